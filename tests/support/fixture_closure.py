"""`-p tests.support.fixture_closure`: after collection, one line `UNRESOLVED <json>` naming
each fixture that some collected item needs and no plugin defines ({name: [node ids]}), so a
--collect-only run shows what would error at setup ("fixture 'worker_id' not found") without
running anything (tests/test_without_xdist.py)."""
import json


def pytest_collection_finish(session):
    missing: dict[str, list[str]] = {}
    for item in session.items:
        info = getattr(item, "_fixtureinfo", None)   # pytest's own record of the closure
        if info is None:
            continue
        for name in info.names_closure:
            if name != "request" and name not in info.name2fixturedefs:
                missing.setdefault(name, []).append(item.nodeid)
    print("UNRESOLVED " + json.dumps(missing, sort_keys=True))
