"""fixtures/headroom.py: QoS checks share their window, the performance piece has it alone,
and a waiting performance run keeps new QoS checks out (no starvation)."""
import fcntl
import os
import threading
import uuid

from fixtures import headroom
from fixtures.waiters import wait_until


def _held(path) -> bool:
    """True when someone holds `path` exclusively or shared (a non-blocking probe)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_qos_checks_overlap_and_a_waiting_saturation_run_goes_next():
    endpoint = f"https://test-{uuid.uuid4().hex}"
    turnstile, window = headroom._paths(endpoint)
    order: list[str] = []
    with headroom.qos_window(endpoint):
        with headroom.qos_window(endpoint):     # shared: a second check gets in at once
            order.append("two checks at once")
        writer_in, writer_go = threading.Event(), threading.Event()

        def saturate():
            with headroom.saturation_window(endpoint):
                order.append("saturation")
                writer_in.set()
                writer_go.wait(10)
        writer = threading.Thread(target=saturate)
        writer.start()
        # the waiting run holds the turnstile: a new QoS check cannot start ...
        wait_until(lambda: _held(turnstile), 10, "the saturation run to queue", 0.01)
        assert not writer_in.is_set()

        def late_check():
            with headroom.qos_window(endpoint):
                order.append("late check")
        late = threading.Thread(target=late_check)
    late.start()                                # ... and once the first check ends,
    assert writer_in.wait(10)                   # the saturation run goes first
    assert order == ["two checks at once", "saturation"]
    writer_go.set()
    writer.join(10)
    late.join(10)
    assert order == ["two checks at once", "saturation", "late check"]
    for p in (turnstile, window):
        p.unlink()
