"""`python -m fixtures.cleanup` (make clean-demo) without a target to sweep: with no lab
running and no target named there is nothing to clean (the embedded lab's state went with
it, and `lab up` wipes it), so one line and status 0, as after `make demo` ended and took its
lab along; a target the user named that does not exist stays an error (status 2). The hints
name the target as the user passes it: `--target`, or `TARGET=` under `make clean-demo`.

Net 127.155 never has a lab (the real `make clean-demo` runs look there)."""
import os
import subprocess

import pytest

from fixtures import cleanup, target as target_mod
from lab import topology
from tests.support.labcli import REPO

NO_LAB_NET = "127.155"


@pytest.fixture
def no_lab(tmp_path, monkeypatch):
    monkeypatch.delenv("VANCOUVER_TARGET", raising=False)
    monkeypatch.delenv(cleanup.VIA_MAKE, raising=False)
    monkeypatch.setattr(target_mod, "lab_target_path",
                        lambda: tmp_path / "no-lab" / "target" / "target.yaml")


@pytest.mark.parametrize("argv", [[], ["--delete"]])
def test_no_lab_and_no_target_is_nothing_to_clean(no_lab, capsys, argv):
    assert cleanup.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (f"cleanup: no lab running on net {topology.NET}: nothing to clean; pass "
                   "--target target.yaml for a real cluster\n")


def test_an_empty_vancouver_target_is_unset(no_lab, capsys, monkeypatch):
    monkeypatch.setenv("VANCOUVER_TARGET", "")
    assert cleanup.main([]) == 0
    assert "nothing to clean" in capsys.readouterr().out


def test_a_named_target_that_does_not_exist_is_an_error(no_lab, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "missing.yaml"
    assert cleanup.main(["--target", str(missing)]) == 2
    assert capsys.readouterr().err == f"cleanup: --target {missing}: no such file\n"
    monkeypatch.setenv("VANCOUVER_TARGET", str(missing))
    assert cleanup.main([]) == 2
    assert capsys.readouterr().err == f"cleanup: VANCOUVER_TARGET={missing}: no such file\n"


def test_under_make_the_hints_say_target_as_make_takes_it(no_lab, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(cleanup.VIA_MAKE, "clean-demo")
    assert cleanup.main(["--delete"]) == 0
    assert capsys.readouterr().out == (
        f"cleanup: no lab running on net {topology.NET}: nothing to clean; pass "
        "`make clean-demo TARGET=target.yaml` for a real cluster\n")
    missing = tmp_path / "missing.yaml"
    assert cleanup.main(["--delete", "--target", str(missing)]) == 2
    assert capsys.readouterr().err == f"cleanup: TARGET={missing}: no such file\n"


def _make_clean_demo(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VANCOUVER_TARGET", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "-s", "--no-print-directory", "clean-demo", *args], cwd=REPO,
                          env=dict(env, VANCOUVER_LAB_NET=NO_LAB_NET), capture_output=True,
                          text=True, timeout=300)


def test_make_clean_demo_says_target_equals(tmp_path):
    """The real recipe: a new user typed `make clean-demo` and was told to pass --target."""
    proc = _make_clean_demo()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == (
        f"cleanup: no lab running on net {NO_LAB_NET}: nothing to clean; pass "
        "`make clean-demo TARGET=target.yaml` for a real cluster")
    missing = tmp_path / "missing.yaml"
    proc = _make_clean_demo(f"TARGET={missing}")
    assert proc.returncode == 2   # make's own status for a failed recipe
    assert f"cleanup: TARGET={missing}: no such file" in proc.stderr.splitlines(), proc.stderr


def test_a_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    """A Ctrl-C mid-sweep (make clean-demo printed a KeyboardInterrupt traceback)."""
    def interrupted(argv=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(cleanup, "main", interrupted)
    assert cleanup.cli([]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted (Ctrl-C)" in err and "Traceback" not in err


def _lab_run_dir(tmp_path):
    """(run dir, its target.yaml) of an embedded lab whose supervisor is this process."""
    from lab import users
    run_dir = tmp_path / "lab"
    (run_dir / "target").mkdir(parents=True)
    path = run_dir / "target" / "target.yaml"
    path.write_text("kind: real\nvsphere:\n  url: https://127.155.5.1:8989/sdk\n"
                    "  user: u\n  password: p\n")
    (run_dir / "supervisor.pid").write_text(
        f"{os.getpid()} {users.process_start_time(os.getpid())}\n")
    return run_dir, path


@pytest.fixture
def lab_in_use(tmp_path, request):
    """An embedded lab's run dir whose supervisor is this process, used by one live run (a
    process of its own, registered as lab/users.py registers a demo run; indirect param
    False: a run of tests only)."""
    from lab import users
    scenarios = getattr(request, "param", True)
    run_dir, path = _lab_run_dir(tmp_path)
    # the run: a process of its own (a run this process descends from would not count)
    run = subprocess.Popen(["sleep", "300"])
    entry = users.register(run_dir, report_dir=tmp_path / "reports", pid=run.pid,
                           scenarios=scenarios)
    yield path, run.pid
    users.unregister(entry)
    run.kill()
    run.wait()


def test_delete_refuses_while_a_live_run_uses_the_lab(no_lab, lab_in_use, capsys):
    """Its resources carry the demo prefix like a dead run's: deleting them fails that run
    (trial: a VMware iteration lost its VM and LUNs mid-step). As `lab down` refuses."""
    path, pid = lab_in_use
    assert cleanup.main(["--delete", "--target", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"cleanup: the lab is in use by 1 run: pid "
                                               f"{pid}"), err
    assert err[0].endswith("or pass --force"), err


def test_under_make_the_refusal_says_force_as_make_takes_it(no_lab, lab_in_use, capsys,
                                                            monkeypatch):
    monkeypatch.setenv(cleanup.VIA_MAKE, "clean-demo")
    assert cleanup.main(["--delete", "--target", str(lab_in_use[0])]) == 2
    assert capsys.readouterr().err.rstrip("\n").endswith("or pass FORCE=1")


def test_force_and_a_dry_run_go_on_with_a_note(no_lab, lab_in_use, capsys, monkeypatch):
    swept = []
    monkeypatch.setattr(cleanup, "SWEEPERS", [lambda target: swept.append(target) or
                                              _Nothing()])
    path, _ = lab_in_use
    assert cleanup.main(["--delete", "--force", "--target", str(path)]) == 0
    assert cleanup.main(["--target", str(path)]) == 0
    assert len(swept) == 2
    out, err = capsys.readouterr()
    assert err.count("cleanup: note: the lab is in use by 1 run") == 2, err
    assert "0 demo resource(s) found, 0 left" in out


@pytest.mark.parametrize("lab_in_use", [False], indirect=True)
def test_a_run_of_tests_only_does_not_count(no_lab, lab_in_use, capsys, monkeypatch):
    """`make test`'s sessions use the session lab but make no demo resources: a test that
    sweeps it (the `sweeps` lane) is not refused because the other lane's session runs."""
    monkeypatch.setattr(cleanup, "SWEEPERS", [lambda target: _Nothing()])
    assert cleanup.main(["--delete", "--target", str(lab_in_use[0])]) == 0
    assert "in use" not in capsys.readouterr().err


def test_a_run_this_process_descends_from_does_not_count(no_lab, tmp_path, capsys,
                                                          monkeypatch):
    """A test session (or a run) sweeping the lab it uses itself cleans on purpose."""
    from lab import users
    run_dir, path = _lab_run_dir(tmp_path)
    entry = users.register(run_dir, pid=os.getppid())   # the process that started pytest
    monkeypatch.setattr(cleanup, "SWEEPERS", [lambda target: _Nothing()])
    try:
        assert cleanup.main(["--delete", "--target", str(path)]) == 0
    finally:
        users.unregister(entry)
    assert "in use" not in capsys.readouterr().err


class _Nothing:
    def find(self):
        return []
