"""`python -m lab` as a new user meets it: `status` shows every endpoint to point a client at
(table and --json), a lab from a gone or other checkout is named in one line by `status` and
`up`, `lab down` and a run's registration cannot interleave (lab/users.py's lock, both orders),
and usage mistakes (--run-dir, VANCOUVER_LAB_NET, a net with no lab, a stale pid file) are one
line each, status 2 for usage errors.

Labs of the tests' own on this module's fixed nets 127.184-127.189, one per test that starts
a lab (tests/support/labcli.py); 127.188 never has a lab.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from fixtures.waiters import wait_until
from lab import components, origin, supervisor, users
from lab.component_base import REPO_ROOT
from tests.support import inner_run
from tests.support.labcli import REPO, LabCli

ENDPOINTS_NET, CHECKOUT_NET, RUN_FIRST_NET, DOWN_FIRST_NET = ("127.184", "127.185", "127.186",
                                                              "127.187")
NO_LAB_NET, OTHER_RUN_DIR_NET = "127.188", "127.189"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


# ---- 1. every endpoint, one table, --json ------------------------------------------------

def test_every_component_lists_endpoints_it_really_binds():
    # The table never points a client at a port nothing listens on, for the parts this test
    # does not start (clouds, Kubernetes, vCenter) as for those it does.
    for c in components.COMPONENTS:
        assert c.endpoints, f"{c.name} shows no endpoint in `lab status`"
        for what, url in c.endpoints:
            assert host_port(url) in c.binds, (c.name, what, url, c.binds)
    names = {c.name: [what for what, _ in c.endpoints] for c in components.COMPONENTS}
    assert names["datera"][:2] == ["REST API https", "REST API http"]
    assert {"VIP1 login (iSCSI portal)", "VIP2 login (iSCSI portal)"} <= set(names["datera"])
    assert all(names[f"openstack-{cloud}"] == [f"Keystone ({cloud})"]
               for cloud in ("mitaka", "newton", "pike"))
    assert names["kubernetes"] == ["kube-apiserver"] and names["vsphere"] == ["vCenter SDK"]


def test_status_shows_every_endpoint_as_a_table_and_as_json(make_lab):
    lab = make_lab(ENDPOINTS_NET)
    assert lab.up("datera").returncode == 0
    status = lab.run("status")
    assert status.returncode == 0, status.stderr
    mgmt, vip1, vip2 = (lab.address(s) for s in ("7.10", "7.11", "7.12"))
    out = status.stdout
    assert f"started from {REPO} (python {sys.executable})" in out.splitlines()[0], out
    # One row per endpoint; a component's name, health and pid on its first row only.
    for row in (rf"datera +healthy +pid \d+ +REST API https +https://{mgmt}:7718",
                rf" +REST API http +http://{mgmt}:7717",
                rf" +VIP1 login \(iSCSI portal\) +{vip1}:3260",
                rf" +VIP2 login \(iSCSI portal\) +{vip2}:3260",
                rf" +VIP1 NBD +nbd://{vip1}:10809",
                rf"ldap +healthy +pid \d+ +LDAP \(slapd\) +ldap://{lab.address('8.1')}:3890"):
        assert re.search(rf"^  {row}$", out, re.M), (row, out)

    doc = json.loads(lab.run("status", "--json").stdout)
    assert doc["running"] and doc["problem"] is None and doc["checkout"] == str(REPO)
    assert doc["python"] == sys.executable and doc["target"] == str(lab.target)
    eps = {c["name"]: {e["name"]: e["url"] for e in c["endpoints"]} for c in doc["components"]}
    assert eps["datera"]["REST API https"] == f"https://{mgmt}:7718"
    # The endpoints are the ones clients use: dfs_sdk's https with the lab's CA, slapd, portals.
    ca = str(lab.target.parent / "datera-ca.pem")
    assert requests.get(eps["datera"]["REST API https"] + "/api_versions", verify=ca,
                        timeout=10).status_code == 200
    for url in (*eps["datera"].values(), *eps["ldap"].values()):
        socket.create_connection(host_port(url), timeout=5).close()


# ---- 2. a lab from a gone (or other) checkout -------------------------------------------

def copy_checkout(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_status_and_up_name_a_lab_from_another_or_a_deleted_checkout(make_lab, tmp_path):
    lab = make_lab(CHECKOUT_NET)
    other = copy_checkout(tmp_path / "other-checkout")
    up = subprocess.run([sys.executable, "-m", "lab", "up", "--only", "ldap", "--run-dir",
                         str(lab.run_dir)], cwd=other, env=lab.env(PYTHONPATH=str(other)),
                        capture_output=True, text=True, timeout=120, start_new_session=True)
    assert up.returncode == 0, up.stderr
    assert json.loads((lab.run_dir / "state.json").read_text())["checkout"] == str(other)

    # Another checkout's lab works for whoever works there: status says whose it is and what
    # `down` would do to them, and never tells this checkout's user to stop it (it did, even
    # while a run used it).
    head = (f"lab: lab on {CHECKOUT_NET} was started from {other} (another checkout; this one "
            f"is {REPO}) and runs that checkout's code; ")
    own = ("; for this checkout's code start a lab of its own on another net "
           "(VANCOUVER_LAB_NET=127.N python -m lab up)")
    status = lab.run("status")
    assert status.returncode == 1
    assert one_line(status.stderr) == (
        f"{head}healthy, used by no run now: `python -m lab down --run-dir {lab.run_dir}` "
        f"would end it for {other} too{own}")
    run = sleeper()
    try:
        users._write_entry(lab.run_dir, "/tmp/other-checkout-run", run.pid)
        in_use = f"{head}it is in use by 1 run: pid {run.pid} (reports /tmp/other-checkout-run, "
        for cmd in (lab.run("status"), lab.up()):   # `up` from here refuses the same way
            assert cmd.returncode == 1
            line = one_line(cmd.stderr)
            assert line.startswith(in_use) and line.endswith(
                f"): `lab down` refuses, and `--force` would end it for that run{own}"), line
    finally:
        run.kill()
        run.wait()

    hint = f"`python -m lab down --run-dir {lab.run_dir}` and `lab up` again"
    shutil.rmtree(other)
    gone = f"lab: lab on {CHECKOUT_NET} was started from {other} (gone): run {hint}"
    assert one_line(lab.run("status").stderr) == gone
    assert json.loads(lab.run("status", "--json").stdout)["problem"] == gone[5:]
    again = lab.up()   # same run dir: not "already running, use it"
    assert again.returncode == 1 and one_line(again.stderr) == gone
    elsewhere = LabCli(CHECKOUT_NET, tmp_path / "elsewhere")   # the same net, another run dir
    assert one_line(elsewhere.up().stderr) == gone

    assert lab.run("down").returncode == 0   # what the line says to do works
    assert lab.up().returncode == 0
    assert lab.run("status").returncode == 0


def test_origin_names_a_deleted_python(tmp_path):
    state = {"net": "127.9", "checkout": str(REPO_ROOT),
             "python": "/nonexistent/venv/bin/python"}
    assert origin.problem(state, tmp_path) == (
        f"lab on 127.9 was started from {REPO_ROOT} (its python /nonexistent/venv/bin/python "
        f"is gone): run `python -m lab down --run-dir {tmp_path}` and `lab up` again")
    assert origin.problem({**state, "python": sys.executable}, tmp_path) is None
    assert origin.problem({}, tmp_path) is None   # a lab still starting has no record yet


class _Config:
    """What fixtures/target.py's _register_use reads of a pytest config."""

    def __init__(self):
        self.stash = pytest.Stash()
        self.pluginmanager = type("PM", (), {"hasplugin": staticmethod(lambda name: False)})


def test_a_run_on_a_lab_whose_checkout_is_gone_stops_in_one_line(tmp_path):
    from fixtures import target as target_plugin
    standin = sleeper()   # the lab's supervisor, as its pid file names it
    try:
        (tmp_path / "supervisor.pid").write_text(
            f"{standin.pid} {users.process_start_time(standin.pid)}\n")
        (tmp_path / "state.json").write_text(json.dumps(
            {"net": "127.9", "checkout": str(tmp_path / "deleted"), "python": sys.executable}))
        (tmp_path / "target").mkdir()
        (tmp_path / "target" / "target.yaml").write_text("kind: lab\n")
        with pytest.raises(pytest.UsageError) as e:
            target_plugin._register_use(_Config(), target_plugin.Target.load(
                tmp_path / "target" / "target.yaml"))
        assert str(e.value) == (f"lab on 127.9 was started from {tmp_path / 'deleted'} (gone): "
                                f"run `python -m lab down --run-dir {tmp_path}` and `lab up` "
                                "again")
        assert not users.users_dir(tmp_path).exists()   # not registered
    finally:
        standin.kill()
        standin.wait()


# ---- 3. lab down against a run registering: both orders, held by the test ---------------

def waits_for_lock(pid: int, path: Path) -> bool:
    """`pid` is blocked in flock() on `path` (a waiter line, "->", of /proc/locks)."""
    inode = os.stat(path).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1] == "->" and fields[2] == "FLOCK" and \
                fields[5] == str(pid) and fields[6].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_a_run_registering_before_down_takes_the_lock_makes_down_refuse(make_lab):
    lab = make_lab(RUN_FIRST_NET)
    assert lab.up().returncode == 0
    run = sleeper()
    try:
        with users.locked(lab.run_dir):   # a registration in progress holds the lock...
            down = subprocess.Popen(lab.argv("down"), cwd=REPO, env=lab.env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
            wait_until(lambda: waits_for_lock(down.pid, users.lock_file(lab.run_dir)), 30,
                       "lab down to wait for the users lock")
            users._write_entry(lab.run_dir, "/tmp/racing-run", run.pid)   # ...and finishes
        out, err = down.communicate(timeout=60)
        assert down.returncode == 1, out
        line = one_line(err)
        assert line.startswith("lab: not stopped, in use by 1 run: ") and f"pid {run.pid}" in line
        assert lab.run("status").returncode == 0   # untouched
    finally:
        run.kill()
        run.wait()


def test_a_run_registering_while_down_stops_the_lab_is_told_in_one_line(make_lab, tmp_path):
    lab = make_lab(DOWN_FIRST_NET)
    assert lab.up().returncode == 0
    inner = tmp_path / "run"
    inner.mkdir()
    (inner / "conftest.py").write_text(
        'pytest_plugins = ["fixtures.config", "fixtures.target", "fixtures.endless", '
        '"fixtures.reporting"]\n')
    (inner / "demo.yaml").write_text(inner_run.demo_yaml({}))
    (inner / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    with users.locked(lab.run_dir):   # `lab down` between its in-use check and the stop
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--demo-config",
             "demo.yaml", "--target", str(lab.target), "test_nothing.py"],
            cwd=inner, env=inner_run.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        wait_until(lambda: waits_for_lock(run.pid, users.lock_file(lab.run_dir))
                   or run.poll() is not None, 60, "the run to wait for the users lock")
        assert run.poll() is None, run.communicate()
        print(supervisor.stop_lab(lab.run_dir))   # what down does while it holds the lock
    out, err = run.communicate(timeout=60)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, out + err
    assert one_line(err) == (f"ERROR: the lab in {lab.run_dir} is stopping or stopped "
                             "(`python -m lab down`): this run is not using it; start one "
                             "with `python -m lab up` (or run without --target)")
    assert not list(users.users_dir(lab.run_dir).glob("*.json"))


def test_registering_on_a_stopped_lab_raises_lab_stopping(tmp_path):
    (tmp_path / "supervisor.pid").write_text("999999999 1.0\n")   # a killed supervisor's
    with pytest.raises(users.LabStopping, match="is stopping or stopped"):
        users.register(tmp_path, "/tmp/r")
    assert not users.users_dir(tmp_path).exists()


# ---- 4. usage mistakes: one line each ----------------------------------------------------

def lab_cmd(*args: str, net: str = NO_LAB_NET) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO,
                          env=dict(os.environ, VANCOUVER_LAB_NET=net), capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("command", ["status", "down", "up", "chaos status"])
def test_run_dir_that_is_a_file_is_a_usage_error(command, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    r = lab_cmd(*command.split(), "--run-dir", str(afile))
    assert r.returncode == 2
    first = command.split()[0]
    assert one_line(r.stderr) == (f"lab: {first}: --run-dir {afile}: not a directory "
                                  f"(see python -m lab {first} --help)")


def test_a_default_run_dir_that_is_a_file_is_a_usage_error():
    default = Path(f"/tmp/vancouver-lab-{NO_LAB_NET}")   # this module's net: never a lab
    default.write_text("")
    try:
        r = lab_cmd("status")
    finally:
        default.unlink()
    assert r.returncode == 2
    assert one_line(r.stderr) == (f"lab: status: the run dir {default} is not a directory: "
                                  "move it away, or give --run-dir (see python -m lab "
                                  "status --help)")


@pytest.mark.parametrize("command", ["status", "down", "chaos status"])
def test_run_dir_that_does_not_exist_is_a_usage_error(command, tmp_path):
    missing = tmp_path / "no-such-dir"
    r = lab_cmd(*command.split(), "--run-dir", str(missing))
    assert r.returncode == 2
    first = command.split()[0]
    assert one_line(r.stderr) == (f"lab: {first}: --run-dir {missing}: no such directory (no "
                                  f"lab was started there) (see python -m lab {first} --help)")
    assert not missing.exists()


def test_run_dir_that_cannot_be_created_is_a_usage_error():
    r = lab_cmd("up", "--only", "ldap", "--run-dir", "/proc/vancouver-lab")
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith("lab: up: --run-dir /proc/vancouver-lab: cannot create it ("), line


def test_a_bad_lab_net_is_a_usage_error():
    r = lab_cmd("status", net="127.999")
    assert r.returncode == 2
    assert one_line(r.stderr) == ("lab: VANCOUVER_LAB_NET '127.999': expected 127.N, N 0..255 "
                                  "(the lab binds to loopback only) (see python -m lab --help)")


def test_an_empty_lab_net_is_the_default_net_as_when_unset(tmp_path):
    """As VANCOUVER_TARGET and VANCOUVER_CACHE: empty means unset (`VAR= make demo`)."""
    r = lab_cmd("status", "--json", "--run-dir", str(tmp_path), net="")
    assert r.returncode == 1 and r.stderr == "", r.stderr
    assert json.loads(r.stdout)["net"] == "127.0"


@pytest.mark.parametrize("only,says", [
    ("", "--only '': expected comma-separated components (ldap, "),
    (",", "--only ',': expected comma-separated components (ldap, "),
    ("datera,bogus", "--only 'datera,bogus': unknown component 'bogus': expected some of ldap, "),
    ("bogus,nope", "--only 'bogus,nope': unknown components 'bogus', 'nope': expected some of "),
])
def test_only_with_no_or_an_unknown_component_is_a_usage_error_and_starts_nothing(
        tmp_path, only, says):
    """`--only ''` once started the whole lab, and an unknown name was the lab's status 1."""
    r = lab_cmd("up", "--only", only, "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert line.startswith(f"lab: up: {says}") and "datera" in line, line
    assert line.endswith(" (see python -m lab up --help)"), line
    assert not (tmp_path / "run" / "supervisor.pid").exists()


def _commands(parser=None, path=()) -> list[tuple[str, ...]]:
    """Every public command path of `python -m lab` (up, ..., chaos latency, ...), from its
    parser, so a command added later is checked too."""
    import argparse

    from lab.__main__ import parser as lab_parser
    parser = parser or lab_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [path]
    return [p for name, sub in subs[0].choices.items() if not name.startswith("_")
            for p in _commands(sub, (*path, name))]


def _usage_line(capsys, argv: list[str]) -> str:
    from lab.__main__ import _parse
    with pytest.raises(SystemExit) as exit:
        _parse(argv)
    assert exit.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    return one_line(err)


def test_every_command_names_itself_in_an_unknown_option_a_missing_value_or_a_stray_word(
        capsys):
    """`lab up --bogus` said `lab: unrecognized arguments: --bogus` (argparse's top parser
    reports what no parser took), unlike every other mistake: `lab: <command>: ...`."""
    commands = _commands()
    assert {("up",), ("down",), ("status",), ("chaos", "latency"), ("chaos", "kill")} <= \
        set(commands), commands
    for cmd in commands:
        name = " ".join(cmd)
        # the required bits of each command, so that only the mistake is left to report
        needs = {"chaos errors": ["--service", "datera"], "chaos reset": ["--service", "nova"],
                 "chaos latency": ["--service", "nova", "--ms", "5"],
                 "chaos vip-down": ["VIP1"], "chaos kill": ["datera"]}.get(name, [])
        see = f" (see python -m lab {name} --help)"
        assert _usage_line(capsys, [*cmd, *needs, "--bogus"]) == \
            f"lab: {name}: unknown option --bogus{see}"
        assert _usage_line(capsys, [*cmd, *needs, "--bogus=1", "-x"]) == \
            f"lab: {name}: unknown options --bogus, -x{see}"
        assert _usage_line(capsys, [*cmd, *needs, "--run-dir"]) == \
            f"lab: {name}: --run-dir: expected a value{see}"
        if name != "chaos clear":   # its rule ids are words
            assert _usage_line(capsys, [*cmd, *needs, "stray"]) == \
                f"lab: {name}: unexpected argument 'stray'{see}"


def test_a_missing_command_is_one_line_naming_the_group(capsys):
    assert _usage_line(capsys, []) == "lab: missing command (see python -m lab --help)"
    assert _usage_line(capsys, ["chaos"]) == \
        "lab: chaos: missing command (see python -m lab chaos --help)"


def test_a_net_with_no_lab_says_so(tmp_path):
    r = lab_cmd("status", "--run-dir", str(tmp_path))
    assert r.returncode == 1 and r.stderr == ""
    assert one_line(r.stdout) == f"no lab running on {NO_LAB_NET} in {tmp_path}"
    doc = json.loads(lab_cmd("status", "--json", "--run-dir", str(tmp_path)).stdout)
    assert doc == {"running": False, "net": NO_LAB_NET, "run_dir": str(tmp_path),
                   "problem": f"no lab running on {NO_LAB_NET} in {tmp_path}"}
    down = lab_cmd("down", "--run-dir", str(tmp_path))
    assert down.returncode == 0 and one_line(down.stdout) == f"no lab running in {tmp_path}"


def test_a_stale_pid_file_is_named_and_down_tidies_it(tmp_path):
    (tmp_path / "supervisor.pid").write_text("999999999 1.0\n")   # kill -9'd supervisor
    r = lab_cmd("status", "--run-dir", str(tmp_path))
    assert r.returncode == 1
    assert one_line(r.stdout) == (
        f"no lab running in {tmp_path}: its supervisor.pid is stale (a killed lab); "
        f"`python -m lab down --run-dir {tmp_path}` tidies it")
    assert lab_cmd("down", "--run-dir", str(tmp_path)).returncode == 0
    assert not (tmp_path / "supervisor.pid").exists()
    assert "is stale" not in lab_cmd("status", "--run-dir", str(tmp_path)).stdout


def test_a_target_dir_given_as_run_dir_points_at_its_parent(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "target.yaml").write_text("kind: lab\n")
    r = lab_cmd("status", "--run-dir", str(target))
    assert one_line(r.stdout) == (f"no lab running in {target}: that is a target directory; "
                                  f"the run dir is its parent, --run-dir {tmp_path}")


def test_status_of_another_run_dir_names_the_lab_running_on_the_net(make_lab, tmp_path):
    lab = make_lab(OTHER_RUN_DIR_NET)
    assert lab.up().returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run(LabCli(OTHER_RUN_DIR_NET, empty).argv("status"), cwd=REPO, env=lab.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert one_line(r.stdout) == (f"no lab running in {empty}; the lab on {OTHER_RUN_DIR_NET} "
                                  f"runs from --run-dir {lab.run_dir}")


def test_help_names_the_net_the_run_dir_and_json():
    r = lab_cmd("--help")
    assert r.returncode == 0
    for words in ("VANCOUVER_LAB_NET=127.N", "/tmp/vancouver-lab-<NET>", "--json"):
        assert words in " ".join(r.stdout.split()), (words, r.stdout)
    assert "--json" in lab_cmd("status", "--help").stdout


# ---- the net's lock file ------------------------------------------------------------------------

def test_the_net_lock_goes_with_the_lab_and_a_starter_racing_the_stop_takes_the_new_one(
        tmp_path, monkeypatch):
    """A stopped lab leaves no /tmp/.vancouver-lab-<net>.lock. A starter that opened the old
    file just before the stop removed it would lock a file nobody else can find (flock's
    remove-while-held race): it notices and locks the file the path names, so a third
    starter is still refused."""
    from lab import runfiles
    # a name no lab uses (lock_path() only formats it): the test can never meet a real lab
    monkeypatch.setattr(runfiles.topology, "NET", f"lock-test-{os.getpid()}")
    first = supervisor.Supervisor(tmp_path / "first", [])
    first._acquire()
    assert runfiles.lock_path().exists()
    real_flock, locks_taken = supervisor.fcntl.flock, []

    def flock_after_the_stop(f, op):   # the first lab stops between the open and the flock
        if op & supervisor.fcntl.LOCK_EX:
            if not locks_taken:
                first._release()
            locks_taken.append(f)
        return real_flock(f, op)

    monkeypatch.setattr(supervisor.fcntl, "flock", flock_after_the_stop)
    second = supervisor.Supervisor(tmp_path / "second", [])
    second._acquire()
    monkeypatch.setattr(supervisor.fcntl, "flock", real_flock)
    try:
        # (not inode numbers: tmpfs hands the removed file's number to the new one)
        assert len(locks_taken) == 2 and locks_taken[0].closed, locks_taken
        assert supervisor._same_file(second._lock_file, runfiles.lock_path())
        with pytest.raises(supervisor.LabError, match="running"):
            supervisor.Supervisor(tmp_path / "third", [])._acquire()
    finally:
        second._release()
    assert not runfiles.lock_path().exists()
