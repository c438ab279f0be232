"""Runs of one shared host (fixtures/shared_host.py, issue 13): a run whose every process was
killed (kill -9) leaves its notes; the next run adopts them only when every registered pid is
dead (a pid reused by a younger process is dead; a live one is not), and its last user undoes
them; a run that ends while another uses the host hands its notes to that run; an undo step
that cannot run now (its platform down) keeps the run's file until it ran, and a later run
adopts what a run ended with. No lab: real processes and flock(2) in a tmp directory."""
import os
import subprocess
import sys

import psutil
import pytest

from fixtures.shared_host import HostUsers
from fixtures.waiters import wait_until
from tests.support.host_user import UserProcess

# A user in its own process of run argv[1]: joins, notes argv[3:], says "joined", then
# waits for "leave" on stdin (or is killed). Its leave's undo runs one pending step: one that
# meets an outage when argv[3:] has `fail=outage`.
USER = r"""
import sys
from fixtures.shared_host import HostUsers
users = HostUsers("esxi", sys.argv[1], sys.argv[2])
users.join()
notes = [n.split("=", 1) for n in sys.argv[3:]]
outage = ["fail", "outage"] in notes
for kind, value in notes:
    if kind != "fail":
        users.note(kind, value)
print("joined", flush=True)
for line in sys.stdin:
    def fail():
        raise ConnectionRefusedError(111, "Connection refused")
    def undo(noted):
        try:
            users.step(noted, fail if outage else (lambda: None), gave_up=lambda e: False)()
        except ConnectionRefusedError:
            pass    # queued (the deferred teardown's part)
    print("last", users.leave(undo), users.handed_to, flush=True)
    break
"""


@pytest.fixture
def procs(tmp_path):
    made: list[UserProcess] = []

    def make(run: str, *notes: str) -> UserProcess:
        made.append(UserProcess(USER, run, tmp_path, *notes))
        return made[-1]
    yield make
    for p in made:
        p.close()


def registrations(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))


def leave(me: HostUsers) -> list[dict]:
    got: list[dict] = []
    assert me.leave(got.append) is True
    return got


def fake_registration(tmp_path, run: str, users: list[tuple[int, float]], *notes: str):
    """A registration file nobody holds, as a run leaves it: its users' pid lines, notes."""
    path = tmp_path / f"vancouver-esxi-{run}"
    path.write_text("".join(f"user {pid} {created:.3f}\n" for pid, created in users)
                    + "".join(n.replace("=", " ", 1) + "\n" for n in notes))
    return path


def me_now() -> tuple[int, float]:
    p = psutil.Process()
    return p.pid, p.create_time()


def test_a_run_whose_every_worker_was_killed_is_adopted_by_the_next_runs_last_user(
        tmp_path, procs):
    """kill -9 of every worker: nobody undid the host. The next run's join takes the notes
    over (the dead run's file goes), and its last user undoes them with its own."""
    two = [procs("dead0", "send_target=127.0.7.11"),
           procs("dead0", "send_target=127.0.7.12", "initiator=/root/Vancouver-VM iqn.x:esx1")]
    for p in two:
        p.kill9()
    assert registrations(tmp_path) == ["vancouver-esxi-dead0"]
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    assert me.adopted == ["vancouver-esxi-dead0"]
    assert registrations(tmp_path) == ["vancouver-esxi-beef"]
    me.note("send_target", "127.0.7.11")
    assert leave(me) == [{"send_target": {"127.0.7.11", "127.0.7.12"},
                          "initiator": {"/root/Vancouver-VM iqn.x:esx1"}}]
    assert registrations(tmp_path) == []


def test_a_pid_reused_by_another_process_is_dead_a_live_one_is_not(tmp_path):
    """The pid of a dead user may belong to a process started since: its create time
    differs. Only a run whose every recorded user is dead is adopted."""
    pid, created = me_now()
    fake_registration(tmp_path, "a1", [(pid, created - 1000.0)], "send_target=127.0.7.21")
    fake_registration(tmp_path, "a2", [(pid, created)], "send_target=127.0.7.22")
    fake_registration(tmp_path, "a3", [(pid, created - 1000.0), (pid, created)],
                      "send_target=127.0.7.23")
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    assert me.adopted == ["vancouver-esxi-a1"]
    assert leave(me) == [{"send_target": {"127.0.7.21"}}]
    assert registrations(tmp_path) == ["vancouver-esxi-a2", "vancouver-esxi-a3"]


def test_a_pid_that_no_longer_exists_or_a_zombie_is_dead(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    zombie = psutil.Process(child.pid)
    zombie_created = zombie.create_time()
    # ended, not reaped yet (no wait() until the end): a zombie
    wait_until(lambda: zombie.status() == psutil.STATUS_ZOMBIE, 30, "the child a zombie", 0.02)
    try:
        fake_registration(tmp_path, "b1", [(child.pid, zombie_created)],
                          "send_target=127.0.7.31")
        fake_registration(tmp_path, "b2", [(2 ** 22 + 12345, 100.0)], "send_target=127.0.7.32")
        me = HostUsers("esxi", "beef", tmp_path)
        me.join()
        assert sorted(me.adopted) == ["vancouver-esxi-b1", "vancouver-esxi-b2"]
        assert leave(me) == [{"send_target": {"127.0.7.31", "127.0.7.32"}}]
    finally:
        child.wait(10)


def test_a_run_killed_while_this_one_ran_is_adopted_by_its_last_user(tmp_path, procs):
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    procs("dead1", "send_target=127.0.7.41").kill9()
    assert leave(me) == [{"send_target": {"127.0.7.41"}}]
    assert me.adopted == ["vancouver-esxi-dead1"] and registrations(tmp_path) == []


def test_a_run_ending_while_another_uses_the_host_hands_its_notes_over(tmp_path, procs):
    """Send targets to the same portals, the host's initiator: shared with the live run.
    Nothing is undone now; the live run's last user undoes both runs' notes."""
    live = procs("11ee", "send_target=127.0.7.11")
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    me.note("send_target", "127.0.7.11")
    me.note("initiator", "/root/Vancouver-VM iqn.x:esx1")
    got = []
    assert me.leave(got.append) is True
    assert got == [] and me.handed_to == "vancouver-esxi-11ee"
    assert registrations(tmp_path) == ["vancouver-esxi-11ee"]
    text = (tmp_path / "vancouver-esxi-11ee").read_text()
    assert "initiator /root/Vancouver-VM iqn.x:esx1\n" in text
    assert live.leave() == "last True None"
    assert registrations(tmp_path) == []


def test_a_dead_runs_notes_go_to_a_live_run_rather_than_being_undone(tmp_path, procs):
    procs("dead2", "send_target=127.0.7.51").kill9()
    live = procs("11ee")               # its join adopted them
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    assert me.adopted == [] and live.proc.poll() is None
    got = []
    assert me.leave(got.append) is True and got == []
    assert "send_target 127.0.7.51\n" in (tmp_path / "vancouver-esxi-11ee").read_text()


def _refused_at_undo(tmp_path):
    """A last user of run "beef" that noted a send target, and its removal, refused while
    down[0]: (users, down, done, steps, remove)."""
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    me.note("send_target", "127.0.7.11")
    down, done, steps = [True], [], []

    def remove():
        if down[0]:
            raise ConnectionRefusedError(111, "Connection refused")
        done.append("send targets")
    return me, down, done, steps, remove


def test_a_pending_undo_step_keeps_the_file_until_it_ran(tmp_path):
    """The vCenter refuses at the last user's undo: the step is queued (the deferred
    teardown's part); the run's file keeps its notes, and goes once the step ran."""
    me, down, done, steps, remove = _refused_at_undo(tmp_path)
    me.note("initiator", "/root/Vancouver-VM iqn.x:esx1")

    def undo(noted):
        steps.append(me.step({"send_target": noted["send_target"]}, remove,
                             gave_up=lambda e: False))
        steps.append(me.step({"initiator": noted["initiator"]}, lambda: done.append("init")))
        for step in steps:
            try:
                step()
            except ConnectionRefusedError:
                pass
    assert me.leave(undo) is True and done == ["init"]
    kept = me.path.read_text().splitlines()
    assert kept[1:] == ["send_target 127.0.7.11"] and kept[0].startswith(f"user {os.getpid()} ")
    # This process lives on: no other run adopts the file meanwhile.
    other = HostUsers("esxi", "f00d", tmp_path)
    other.join()
    assert other.adopted == []
    # Run again (drained) while the other run uses the host: handed to it, not run.
    steps[0]()
    assert done == ["init"] and me.handed_to == "vancouver-esxi-f00d"
    assert registrations(tmp_path) == ["vancouver-esxi-f00d"]
    assert leave(other) == [{"send_target": {"127.0.7.11"}}]


def test_a_pending_step_runs_once_back_and_the_file_goes(tmp_path):
    me, down, done, steps, remove = _refused_at_undo(tmp_path)

    def undo(noted):
        steps.append(me.step(noted, remove, gave_up=lambda e: False))
        with pytest.raises(ConnectionRefusedError):
            steps[0]()
    me.leave(undo)
    assert registrations(tmp_path) == ["vancouver-esxi-beef"]
    down[0] = False
    steps[0]()
    assert done == ["send targets"] and registrations(tmp_path) == []


def test_a_step_whose_error_is_final_is_not_kept(tmp_path):
    """Not an outage (the cleanup command finds what is left): no run retries it."""
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    me.note("send_target", "127.0.7.11")

    def undo(noted):
        def broken():
            raise RuntimeError("HostConfigFault")
        with pytest.raises(RuntimeError):
            me.step(noted, broken, gave_up=lambda e: not isinstance(e, ConnectionError))()
    assert me.leave(undo) is True and registrations(tmp_path) == []


def test_a_run_that_ended_with_a_step_pending_is_adopted_by_the_next(tmp_path, procs):
    """The vCenter never came back before the run ended: its file stays with the pending
    notes and its pids; the next run adopts them once the process is gone."""
    ended = procs("e1", "send_target=127.0.7.61", "fail=outage")
    assert ended.leave() == "last True None"
    ended.proc.stdin.close()
    assert ended.proc.wait(10) == 0
    assert registrations(tmp_path) == ["vancouver-esxi-e1"]
    me = HostUsers("esxi", "beef", tmp_path)
    me.join()
    assert me.adopted == ["vancouver-esxi-e1"]
    assert leave(me) == [{"send_target": {"127.0.7.61"}}]


def test_hosts_of_other_names_never_meet(tmp_path, procs):
    """The name is the host's (scenarios/vmware/conftest.py host_key): another vCenter's
    dead run is not this host's to undo."""
    fake_registration(tmp_path, "c1", [(2 ** 22 + 12345, 100.0)], "send_target=127.0.7.71")
    me = HostUsers("esxi-0123abcd", "beef", tmp_path)
    me.join()
    assert me.adopted == [] and leave(me) == [{}]
    assert registrations(tmp_path) == ["vancouver-esxi-c1"]
