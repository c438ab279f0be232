"""The guest agent's guestinfo post (lab/vsphere/guest.py GuestInfo.publish, leave_result)
against a receiver that answers a scripted list of statuses: what a restarting vCenter answers
(503 while it resumes its guests, 500 when a save failed) is retried until answered; what a
vCenter means (409 the VM is off, 404 no such VM) is final; the result file stays on disk
until the post is answered (issue 13: a report lost to a vCenter kill -9)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.vsphere import guest


class Scripted:
    def __init__(self, statuses: list[int]):
        self.statuses, self.bodies = list(statuses), []
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                me.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                status = me.statuses.pop(0) if me.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error": "scripted"}' if status >= 400 else b'{"updated": 1}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.doc = {"guestinfo_url": f"http://127.0.0.1:{self.server.server_address[1]}/guestinfo?vm=vm-9",
                    "auth": {"user": "u", "password": "p"}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(request):
    s = Scripted(request.param)
    yield s
    s.close()


@pytest.mark.parametrize("scripted", [[503, 503, 500], [429]], indirect=True)
def test_a_restarting_vcenter_is_retried_until_it_answers(scripted):
    values = {"guestinfo.state": "done", "guestinfo.exitcode": "0"}
    assert guest.GuestInfo(scripted.doc).publish(values) is True
    assert scripted.bodies == [values] * len(scripted.bodies) and len(scripted.bodies) >= 2


@pytest.mark.parametrize("scripted", [[409], [404]], indirect=True)
def test_a_refusal_is_final(scripted, capsys):
    assert guest.GuestInfo(scripted.doc).publish({"guestinfo.state": "done"}) is False
    assert len(scripted.bodies) == 1
    assert "cannot publish guestinfo" in capsys.readouterr().err


def test_the_result_stays_on_disk_until_answered(tmp_path, monkeypatch):
    monkeypatch.setenv(guest.PUBLISH_RETRY_ENV, "0.5")
    values = {"guestinfo.state": "done", "guestinfo.exitcode": "3"}
    left = guest.leave_result(str(tmp_path / "vm-9.json"), values)
    assert left is not None and json.loads(left.read_text()) == values
    assert left.stat().st_mode & 0o777 == 0o600
    # nobody listens: the post gives up and the file is what the vCenter applies
    doc = {"guestinfo_url": "http://127.0.0.1:9/guestinfo?vm=vm-9"}
    assert guest.GuestInfo(doc).publish(values) is False
    assert left.exists()
    assert list(tmp_path.iterdir()) == [left]   # no temp file left behind
    assert guest.leave_result(None, values) is None
