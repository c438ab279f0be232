"""A pytest plugin (`-p tests.support.event_log`, the repo on PYTHONPATH) writing every run event
the controller publishes to the JSON-lines file named by $VANCOUVER_EVENT_LOG: one
`fixtures.reporting.events.to_dict` form per line. For tests and benchmarks that time steps
(tests/support/outage_run.py)."""
import json
import os
import threading


def pytest_sessionstart(session):
    path = os.environ.get("VANCOUVER_EVENT_LOG")
    if not path or hasattr(session.config, "workerinput"):
        return
    from fixtures.reporting import bus_key
    from fixtures.reporting.events import to_dict
    bus = session.config.stash.get(bus_key, None)
    if bus is None:
        return
    out = open(path, "a", encoding="utf-8", buffering=1)
    lock = threading.Lock()

    def write(event):
        with lock:
            out.write(json.dumps(to_dict(event), default=str) + "\n")
    bus.subscribe(write)
