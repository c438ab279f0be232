"""A bounded demo run under injected API errors (issue 13's "5% API errors" Show): the
tenancy scenario (Datera) and the volume-features scenario (Cinder on the Pike cloud), ci
profile, for the tenants Vancouver-OP and Vancouver-KU (Datera only), with demo.yaml
`chaos:` injections of HTTP 503 on a share of the Datera API's and Pike Cinder's requests
for the whole run. Shared by tests/test_chaos.py (a short run) and
bench/bench_chaos_errors.py (the full 2 minutes).

The clients retry 503 as real ones do: dfs_sdk's own backoff (fixtures/datera.py),
keystoneauth's status_code_retries (fixtures/openstack/clouds.py). What the run shows:
- `injected(lab)`: how many 503s the lab's chaos switch sent (its log lines, lab/http/chaos.py);
- `Summary`: results by outcome, fio verify steps passed, resources created and deleted.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from fixtures.window_wait import STOP_SKIP
from tests.support.labcli import REPO, LabCli

COMPONENTS = "datera,openstack-pike"
SCENARIOS = ("scenarios/test_tenancy.py", "scenarios/openstack/test_volume_features.py")
# Pike's tenant for both scenarios, and a second Datera tenant: tenancy checks that "another
# tenant" (the next one of the list) cannot see the first one's volumes.
TENANTS = ("Vancouver-OP", "Vancouver-KU")
# The scenario steps that write and read back data with fio --verify=crc32c.
VERIFY_STEPS = ("CHAP: the wrong secret is refused, the right one works",
                "CHAP: a wrong secret is refused at attach, the right one works")
_INJECTED = re.compile(r"chaos: injected HTTP (\d+) on (\w+): (\S+) (\S+)")


def demo_yaml(out: Path, *, rate: float | None, for_s: float = 0, status: int = 503) -> Path:
    """The repo's demo.yaml with TENANTS only, its ci profile with two injections
    from the first test's start: `status` on `rate` of the Datera API's and of Pike
    Cinder's requests, for `for_s` seconds (rate None: no injections, the reference)."""
    doc = yaml.safe_load((REPO / "demo.yaml").read_text())
    doc["tenants"] = [t for t in doc["tenants"] if t["name"] in TENANTS]
    doc["profiles"]["ci"].pop("chaos", None)
    if rate is not None:
        doc["profiles"]["ci"]["chaos"] = [
            {"at_s": 0, "for_s": for_s, "kind": "errors", "service": "datera",
             "status": status, "rate": rate},
            {"at_s": 0, "for_s": for_s, "kind": "errors", "service": "cinder",
             "cloud": "pike", "status": status, "rate": rate}]
    path = out / "demo-chaos.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def injected(lab: LabCli) -> Counter:
    """(service, status) -> how many errors the chaos switch injected (its log lines)."""
    counts: Counter = Counter()
    for name in ("datera", "openstack-pike"):
        try:
            text = (lab.run_dir / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            continue
        for m in _INJECTED.finditer(text):
            counts[(m.group(2), int(m.group(1)))] += 1
    return counts


@dataclass
class Summary:
    outcomes: Counter           # results.jsonl outcome -> count
    failed: list[str]           # nodeids of results not passed (but a wait a stop ended)
    passed_modules: set         # scenario modules with a passed iteration
    verify_steps_passed: int    # fio write+verify steps that ended passed
    verify_steps_other: int     # ... that ended otherwise
    created: int
    deleted: int

    def line(self) -> str:
        return (f"results {dict(self.outcomes)}; fio verify steps passed "
                f"{self.verify_steps_passed}, not passed {self.verify_steps_other}; "
                f"resources created {self.created}, deleted {self.deleted}")


def stop_ended_wait(result: dict) -> bool:
    """A results.jsonl line of an iteration skipped because a stop by a signal ended its wait
    for another worker's QoS window or lease (fixtures/window_wait.py): the stop's doing,
    not a failure."""
    return result["outcome"] == "skipped" and result.get("reason", "").startswith(STOP_SKIP)


def summarize(out: Path) -> Summary:
    """From a run's results.jsonl and events.jsonl (tests/support/event_log.py)."""
    results = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()
               if ln.strip()]
    events = [json.loads(ln) for ln in (out / "events.jsonl").read_text().splitlines()
              if ln.strip()]
    verify = [e for e in events if e["kind"] == "step_end" and e["name"] in VERIFY_STEPS]
    return Summary(
        outcomes=Counter(r["outcome"] for r in results),
        failed=[r["nodeid"] for r in results
                if r["outcome"] != "passed" and not stop_ended_wait(r)],
        passed_modules={r["nodeid"].split("::")[0] for r in results
                        if r["outcome"] == "passed"},
        verify_steps_passed=sum(1 for e in verify if e["outcome"] == "ok"),
        verify_steps_other=sum(1 for e in verify if e["outcome"] != "ok"),
        created=sum(1 for e in events if e["kind"] == "resource_created"),
        deleted=sum(1 for e in events if e["kind"] == "resource_deleted"))
