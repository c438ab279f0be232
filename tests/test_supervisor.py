"""The lab supervisor (`python -m lab up|down|status`) on labs of the tests' own.

Each test uses its own VANCOUVER_LAB_NET (see conftest.py), so these run beside the session
lab and beside each other under xdist.
"""
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys

import pytest
import requests
import yaml

from clients import ports
from fixtures.waiters import process_alive, wait_gone
from lab.topology import LDAP_PORT
from tests.support.labcli import REPO



def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]


def port_free(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def secrets_of(lab) -> list[str]:
    """The running lab's secrets as written: Datera's and the directory users' passwords
    (target dir), the TLS private keys (each component's tls/*.key)."""
    tdir = lab.target.parent
    found = [json.loads((tdir / "datera.json").read_text())["password"]] \
        if (tdir / "datera.json").exists() else []
    found += [u["password"] for u in json.loads((tdir / "ldap-users.json").read_text()).values()]
    keys = list(lab.run_dir.rglob("tls/*.key"))
    found += [k.read_text().strip().splitlines()[1] for k in keys]   # a line of the key
    return found


def assert_down_left_only_logs(lab, secrets: list[str]) -> None:
    """What `lab down` leaves (README, Durable lab state): logs/ and the empty users.lock,
    and no secret in them."""
    left = sorted(str(p.relative_to(lab.run_dir)) for p in lab.run_dir.rglob("*"))
    assert [p for p in left if p != "logs" and not p.startswith("logs/")] == ["users.lock"], left
    assert (lab.run_dir / "users.lock").stat().st_size == 0
    for log in (lab.run_dir / "logs").iterdir():
        text = log.read_text(errors="replace")
        assert not [s for s in secrets if s in text], log


def test_the_lab_files_go_but_logs_the_users_lock_and_a_mounted_node_dir(tmp_path,
                                                                           monkeypatch):
    from lab import runfiles
    for d in ("target", "users", "tls", "kubernetes/etcd", "kubernetes-node/pods/p1", "logs"):
        (tmp_path / d).mkdir(parents=True)
    for f in ("state.json", "supervisor.pid", "chaos.json", "users.lock", "logs/x.log"):
        (tmp_path / f).write_text("")
    runfiles.remove_lab_files(tmp_path, ["kubernetes"])
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == \
        ["logs", "logs/x.log", "users.lock"]
    # a node dir with a volume still mounted in it is left for the node's next start
    mounted = tmp_path / "kubernetes-node"
    (mounted / "vol").mkdir(parents=True)
    real_read = runfiles.Path.read_text

    def proc_mounts(self, *a, **kw):
        text = real_read(self, *a, **kw)
        return text + f"tmpfs {mounted}/vol tmpfs rw 0 0\n" if str(self) == "/proc/mounts" \
            else text
    monkeypatch.setattr(runfiles.Path, "read_text", proc_mounts)
    runfiles.remove_lab_files(tmp_path, ["kubernetes"])
    assert (mounted / "vol").is_dir()


def test_up_status_down_leaves_no_process(make_lab):
    lab = make_lab("127.201")
    up = lab.up()
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip() == str(lab.target)

    doc = yaml.safe_load(lab.target.read_text())
    assert doc["kind"] == "lab" and doc["components"] == ["ldap"]
    assert doc["ldap"]["url"] == f"ldap://{lab.address('8.1')}:{LDAP_PORT}"
    users = lab.target.parent / "ldap-users.json"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert stat.S_IMODE((lab.run_dir / "ldap" / "slapd.conf").stat().st_mode) == 0o600
    # the run dir holds the lab's secrets: its owner's only, and so is every file in it
    assert stat.S_IMODE(lab.run_dir.stat().st_mode) == 0o700
    for f in [lab.target, lab.run_dir / "state.json", *(lab.run_dir / "logs").iterdir()]:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f

    status = lab.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    supervisor, children = lab.supervisor_pid(), lab.component_pids()
    assert f"pid {children['ldap']}" in status.stdout
    assert f"{lab.address('8.1')}:{LDAP_PORT}" in status.stdout and "healthy" in status.stdout

    down = lab.run("down")
    assert down.returncode == 0, down.stderr
    assert wait_gone([supervisor, *children.values()], timeout=0.5) == []
    assert not (lab.run_dir / "supervisor.pid").exists()
    assert not lab.target.exists()
    # `lab down` removes the state (README); the logs stay to be read
    assert not (lab.run_dir / "ldap").exists()
    assert (lab.run_dir / "logs" / "ldap.log").is_file()
    assert port_free(lab.address("8.1"), LDAP_PORT)
    assert lab.run("status").returncode == 1
    assert lab.run("down").returncode == 0   # idempotent


def test_second_up_is_refused_in_one_line(make_lab, tmp_path):
    lab = make_lab("127.203")
    assert lab.up().returncode == 0
    again = lab.up()
    assert again.returncode == 1
    # It points at the running lab (another run may be using it), never tells to stop it.
    line = one_line(again.stderr)
    assert f"--target {lab.run_dir}/target/target.yaml" in line and "VANCOUVER_LAB_NET" in line
    assert "stop it first" not in line
    # Same NET from another run dir: refused too, pointing at the running lab's run dir.
    other = make_lab("127.203")
    other.run_dir = tmp_path / "elsewhere"
    elsewhere = other.up()
    assert elsewhere.returncode == 1
    assert f"run dir {lab.run_dir}" in one_line(elsewhere.stderr)
    assert not (other.run_dir / "supervisor.pid").exists()
    assert lab.run("status").returncode == 0   # the running lab is untouched


def test_port_in_use_is_refused_in_one_line(make_lab):
    lab = make_lab("127.204")
    with socket.socket() as squatter:
        squatter.bind((lab.address("8.1"), LDAP_PORT))
        squatter.listen()
        up = lab.up()
    assert up.returncode == 1
    line = one_line(up.stderr)
    assert f"{lab.address('8.1')}:{LDAP_PORT}" in line and "in use" in line
    assert lab.supervisor_pid() is None


def test_missing_package_is_named_in_one_line(make_lab, tmp_path):
    lab = make_lab("127.205")
    empty = tmp_path / "bin"
    empty.mkdir()
    up = lab.up(env=lab.env(PATH=str(empty)))
    assert up.returncode == 1
    line = one_line(up.stderr)
    assert "slapd" in line and "make setup" in line


def test_component_that_fails_is_named_with_its_last_log_line(make_lab, tmp_path):
    lab = make_lab("127.206")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "slapadd").symlink_to("/usr/sbin/slapadd")
    fake = bin_dir / "slapd"
    fake.write_text("#!/bin/sh\necho 'slapd: cannot open the database' >&2\nexit 7\n")
    fake.chmod(0o755)
    up = lab.up(env=lab.env(PATH=f"{bin_dir}:/usr/bin:/bin"))
    assert up.returncode == 1
    assert one_line(up.stderr) == ("lab: ldap exited with status 7 while starting: "
                                   "slapd: cannot open the database")
    assert lab.supervisor_pid() is None and not lab.target.exists()


def test_sigterm_to_supervisor_stops_every_child(make_lab):
    lab = make_lab("127.207")
    assert lab.up().returncode == 0
    supervisor, children = lab.supervisor_pid(), lab.component_pids()
    assert process_alive(supervisor) and all(map(process_alive, children.values()))
    os.kill(supervisor, signal.SIGTERM)
    assert wait_gone([supervisor, *children.values()]) == []
    assert not (lab.run_dir / "supervisor.pid").exists()
    assert port_free(lab.address("8.1"), LDAP_PORT)


def test_supervisor_killed_with_sigkill_leaves_no_child(make_lab):
    lab = make_lab("127.211")
    assert lab.up("datera").returncode == 0
    secrets = secrets_of(lab)
    assert lab.run("chaos", "latency", "--service", "datera", "--ms", "5").returncode == 0
    supervisor, children = lab.supervisor_pid(), lab.component_pids()
    os.kill(supervisor, signal.SIGKILL)
    assert wait_gone([supervisor, *children.values()]) == []   # they die with their parent
    legacy = lab.run_dir / "tls"   # where a lab of an older checkout kept Datera's key
    legacy.mkdir()
    (legacy / "datera-mgt1.key").write_text(secrets[-1] + "\n")
    down = lab.run("down")   # tidies the files the killed supervisor left
    assert down.returncode == 0
    assert not (lab.run_dir / "supervisor.pid").exists() and not lab.target.exists()
    assert_down_left_only_logs(lab, secrets)   # the chaos rule and the TLS key too
    assert lab.up().returncode == 0   # and the run dir is usable again


def test_foreground_runs_until_ctrl_c(make_lab):
    lab = make_lab("127.208")
    proc = subprocess.Popen(lab.argv("up", "--only", "ldap", "--foreground"), cwd=REPO,
                            env=lab.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no target.yaml path within 60s"
        assert proc.stdout.readline().strip() == str(lab.target)
        children = lab.component_pids()
        assert lab.run("status").returncode == 0
        proc.send_signal(signal.SIGINT)   # what Ctrl-C sends to the foreground process
        assert proc.wait(timeout=30) == 0
        assert wait_gone(children.values()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unknown_component_is_refused(make_lab):
    lab = make_lab("127.209")
    up = lab.up(only="ldap,nosuch")
    assert up.returncode == 2   # a usage mistake (lab/usage.py)
    assert "unknown component 'nosuch'" in one_line(up.stderr)


def test_datera_comes_up_with_tls_and_target_dir(make_lab):
    lab = make_lab("127.210")
    up = lab.up(only="datera")   # ldap comes along: Datera depends on it
    assert up.returncode == 0, up.stderr
    assert set(lab.component_pids()) == {"ldap", "datera"}
    target = lab.target.parent
    doc = yaml.safe_load(lab.target.read_text())
    assert doc["datera"] == {"udc": "datera.json", "ca_file": "datera-ca.pem", "secure": True,
                             "ldap_server": "vancouver-ldap", "transport": "lab",
                             "tenant_qos": "lab-extension"}
    udc = json.loads((target / "datera.json").read_text())
    assert stat.S_IMODE((target / "datera.json").stat().st_mode) == 0o600
    mgmt = lab.address("7.10")
    assert udc == {"mgmt_ip": mgmt, "username": "admin", "password": udc["password"],
                   "tenant": "/root", "api_version": "2.2", "ldap": ""}
    config = lab.run_dir / "datera" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text())["ldap"] == {
        "vancouver-ldap": {"url": f"ldap://{lab.address('8.1')}:{LDAP_PORT}",
                           "base_dn": "dc=vancouver,dc=lab"}}
    # The lab CA verifies the server certificate, addressed by IP as dfs_sdk does.
    ca = str(target / "datera-ca.pem")
    assert requests.get(f"https://{mgmt}:{ports.DATERA_HTTPS}/api_versions", verify=ca,
                        timeout=10).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{mgmt}:{ports.DATERA_HTTPS}/api_versions", timeout=10)   # system CAs only
    key = lab.run_dir / "datera" / "tls" / "datera-mgt1.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secrets = secrets_of(lab)
    assert lab.run("chaos", "errors", "--service", "datera", "--rate", "0.01").returncode == 0
    down = lab.run("down")
    assert down.returncode == 0
    assert port_free(mgmt, ports.DATERA_HTTP) and port_free(mgmt, ports.DATERA_HTTPS)
    # The CA's server key was left in <run dir>/tls/ after down, and the chaos rules would
    # have hit the next lab of this run dir.
    assert_down_left_only_logs(lab, secrets)


def _killed_labs_component(tmp_path, argv) -> subprocess.Popen:
    """A run dir whose supervisor is gone and whose one component (its own process group,
    as the supervisor starts them) runs `argv`."""
    proc = subprocess.Popen(argv, start_new_session=True)
    (tmp_path / "state.json").write_text(json.dumps({"components": [{"pid": proc.pid}]}))
    return proc


def test_up_right_after_a_killed_lab_waits_for_its_dying_components(tmp_path):
    """A killed supervisor's components get SIGTERM from the kernel and need a moment to
    stop (Datera's took up to 1 s here): an `up` in that moment is not refused."""
    from lab import supervisor
    dying = _killed_labs_component(
        tmp_path, [sys.executable, "-c", "import time; time.sleep(0.5)"])
    try:
        supervisor.wait_for_killed_labs_components(tmp_path)   # no LabError: it waited
        assert dying.poll() is not None
    finally:
        dying.kill()
        dying.wait()


def test_up_refuses_a_killed_labs_component_that_does_not_stop(tmp_path, monkeypatch):
    from lab import supervisor
    monkeypatch.setattr(supervisor, "STOP_TIMEOUT_S", 0.3)
    stuck = _killed_labs_component(tmp_path, [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(supervisor.LabError, match="components of a killed lab still run"):
            supervisor.wait_for_killed_labs_components(tmp_path)
    finally:
        stuck.kill()
        stuck.wait()
