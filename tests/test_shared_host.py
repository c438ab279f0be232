"""The run's registration of the shared ESXi host (fixtures/shared_host.py, issue 13): only
the last live user undoes the host, with what every user noted; a user killed by SIGKILL
neither blocks that nor counts; a live peer process keeps the host; a worker joining while
the last one undoes waits, then registers on a fresh file (the host prepared again); the
registration file is gone after the last user. No lab: real processes and flock(2) in a
tmp directory."""
import os
import signal
import threading

import pytest

from fixtures.shared_host import HostUsers
from tests.support.host_user import UserProcess

RUN = "0123456789abcdef"

# A peer worker in its own process: joins, notes argv[2:], says "joined", then per stdin line
# "leave" reports whether it was the last ("last True|False") and what its undo got.
PEER = r"""
import sys
from fixtures.shared_host import HostUsers
users = HostUsers("esxi", sys.argv[1], sys.argv[2])
users.join()
for note in sys.argv[3:]:
    users.note(*note.split("=", 1))
print("joined", flush=True)
for line in sys.stdin:
    if line.strip() == "leave":
        got = []
        last = users.leave(lambda noted: got.append(noted))
        print("last", last, sorted((k, sorted(v)) for n in got for k, v in n.items()),
              flush=True)
        break
"""


@pytest.fixture
def peers(tmp_path):
    made: list[UserProcess] = []

    def make(*notes: str) -> UserProcess:
        made.append(UserProcess(PEER, RUN, tmp_path, *notes))
        return made[-1]
    yield make
    for p in made:
        p.close()


def users(tmp_path) -> HostUsers:
    return HostUsers("esxi", RUN, tmp_path)


def registrations(tmp_path) -> list[str]:
    """The registration files (the host's lock file stays: removing a flock'd file races)."""
    return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))


def test_the_only_user_undoes_what_it_noted_and_removes_the_registration(tmp_path):
    """-n 1 (or no xdist): the one worker is the last."""
    me, got = users(tmp_path), []
    me.join()
    me.note("send_target", "127.0.7.11")
    me.note("send_target", "127.0.7.11")        # noted once
    me.note("initiator", "/root/Vancouver-VM iqn.1998-01.com.vmware:esx1")
    assert me.path.exists()
    assert me.leave(got.append) is True
    assert got == [{"send_target": {"127.0.7.11"},
                    "initiator": {"/root/Vancouver-VM iqn.1998-01.com.vmware:esx1"}}]
    assert registrations(tmp_path) == []


def test_only_the_last_of_five_users_undoes_the_union_of_their_notes(tmp_path):
    """-n 5: four leave first and undo nothing (their peers still use the host); the fifth
    undoes also what only the others prepared."""
    five, got = [users(tmp_path) for _ in range(5)], []
    for i, u in enumerate(five):
        u.join()
        u.note("send_target", f"127.0.7.{11 + i % 2}")
    five[0].note("initiator", "/root/Vancouver-VM iqn.x:esx1")
    assert [u.leave(got.append) for u in five] == [False] * 4 + [True]
    assert got == [{"send_target": {"127.0.7.11", "127.0.7.12"},
                    "initiator": {"/root/Vancouver-VM iqn.x:esx1"}}]
    assert not five[0].path.exists()


def test_a_live_peer_process_keeps_the_host_until_it_leaves(tmp_path, peers):
    peer = peers("send_target=127.0.7.12")
    me, got = users(tmp_path), []
    me.join()
    me.note("send_target", "127.0.7.11")
    assert me.leave(got.append) is False and got == []
    assert me.path.exists()
    assert peer.leave() == "last True [('send_target', ['127.0.7.11', '127.0.7.12'])]"
    assert not me.path.exists()


def test_a_peer_killed_by_sigkill_neither_blocks_nor_counts(tmp_path, peers):
    """Its lock goes with the process; what it noted is undone by the last live user."""
    peer = peers("send_target=127.0.7.12")
    me, got = users(tmp_path), []
    me.join()
    os.kill(peer.proc.pid, signal.SIGKILL)
    assert peer.proc.wait(10) == -signal.SIGKILL
    assert me.leave(got.append) is True
    assert got == [{"send_target": {"127.0.7.12"}}]
    assert not me.path.exists()


def test_of_users_leaving_at_once_exactly_one_undoes(tmp_path, peers):
    four = [peers(f"send_target=127.0.7.{i}") for i in range(4)]
    for p in four:     # all asked before any answer is read: the leaves overlap
        p.proc.stdin.write("leave\n")
        p.proc.stdin.flush()
    answers = [p.proc.stdout.readline().split()[1] for p in four]
    assert sorted(answers) == ["False"] * 3 + ["True"], answers
    assert registrations(tmp_path) == []


def test_a_worker_joining_while_the_last_one_undoes_waits_then_registers_afresh(tmp_path):
    """The joiner must not prepare the host while the undo still removes its send targets;
    after it, it registers on a new file that knows nothing of the old notes."""
    last, joiner = users(tmp_path), users(tmp_path)
    last.join()
    last.note("send_target", "127.0.7.11")
    joined = threading.Event()
    seen = {}

    def join():
        joiner.join()
        joined.set()

    def undo(noted):
        t = threading.Thread(target=join)
        t.start()
        # A negative can only be waited for with a bound: the join must still be waiting.
        seen["joined during undo"] = joined.wait(0.5)
        seen["noted"] = noted
        seen["thread"] = t

    assert last.leave(undo) is True
    seen["thread"].join(10)
    assert seen["joined during undo"] is False and joined.is_set()
    assert seen["noted"] == {"send_target": {"127.0.7.11"}}
    assert joiner.joined and joiner.path.exists()
    got = []
    assert joiner.leave(got.append) is True and got == [{}]
    assert not joiner.path.exists()


def test_an_undo_that_fails_or_is_interrupted_still_removes_the_registration(tmp_path):
    """Ctrl-C (KeyboardInterrupt) or an error in the undo: the next run must not find it."""
    for error in (KeyboardInterrupt(), RuntimeError("vCenter gone")):
        me = users(tmp_path)
        me.join()

        def undo(noted, error=error):
            raise error
        with pytest.raises(type(error)):
            me.leave(undo)
        assert registrations(tmp_path) == []


def test_leaving_without_joining_or_twice_undoes_nothing(tmp_path):
    me, got = users(tmp_path), []
    assert me.leave(got.append) is False
    me.join()
    assert me.leave(got.append) is True
    assert me.leave(got.append) is False and got == [{}]


def test_a_note_is_one_line_of_a_registered_user(tmp_path):
    me = users(tmp_path)
    with pytest.raises(RuntimeError, match="join"):
        me.note("send_target", "127.0.7.11")
    me.join()
    with pytest.raises(ValueError, match="one line"):
        me.note("send_target", "127.0.7.11\ninitiator x")
    with pytest.raises(ValueError, match="one word"):
        me.note("send target", "127.0.7.11")
    me.leave(lambda noted: None)
