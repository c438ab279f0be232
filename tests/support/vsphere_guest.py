"""What the lab's vCenter does for a VM's guest agent (lab/vsphere/guest.py), for tests that
run the agent themselves: a receiver of its /guestinfo posts (POST JSON, HTTP basic auth),
the VM's document, and the agent started as the vCenter starts it (JSON on stdin, a process
group of its own). Used by tests/test_vmware_guest.py and tests/test_chaos.py."""
import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST_IQN = "iqn.1998-01.com.vmware:esxi-guest-test"
CHAP = ("chap_esx", "esxsecret1234567")
USER, PASSWORD = "vc-user", "guestinfo-pw-123"


class GuestInfoReceiver:
    """drop_first: that many posts get their connection closed unanswered, as a vCenter that
    dies mid-request (the agent retries them)."""
    def __init__(self, drop_first: int = 0):
        self.values: dict[str, str] = {}
        self.unauthorized = 0
        self.dropped = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.dropped < drop_first:
                    receiver.dropped += 1
                    self.close_connection = True
                    return
                if self.headers.get("Authorization") != want:
                    receiver.unauthorized += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.values.update(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/guestinfo?vm=vm-42"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def vm_doc(receiver, vol, userdata: str, *, chap=CHAP, iqn=HOST_IQN,
           naa="naa.6001405x") -> dict:
    """The document the vCenter hands the agent: one VMDK on the LUN of `vol`
    (tests/support/datera_lab.LabVolume), reached through its portals in order."""
    return {"vm": "vm-42", "name": "vancouver-vm-1", "userdata": userdata,
            "host": {"iqn": iqn, "chap_user": chap[0] if chap else "",
                     "chap_secret": chap[1] if chap else ""},
            "disks": [{"label": "Hard disk 1", "datastore": "vancouver-ds", "naa": naa,
                       "target_iqn": vol.iqn, "portals": [f"{ip}:3260" for ip in vol.ips],
                       "lun_id": 0, "capacity_bytes": 64 << 20,
                       "vmdk_path": "[vancouver-ds] vancouver-vm-1/vancouver-vm-1.vmdk"}],
            "guestinfo_url": receiver.url, "auth": {"user": USER, "password": PASSWORD}}


def start_agent(doc: dict) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "lab.vsphere.guest"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    proc.stdin.write(json.dumps(doc))
    proc.stdin.close()
    return proc
