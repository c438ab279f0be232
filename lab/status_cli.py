"""`python -m lab status [--json]`: the lab's supervisor, the runs using it, and per component
its health and every endpoint a user points a client at, as one table (or one JSON document
for scripts, with the same facts).

JSON shape (`--json`):
    {"running": bool, "net": "127.N", "run_dir": str, "problem": str | null,
     "supervisor_pid": int, "checkout": str, "python": str, "target": str | null,
     "runs": [{"pid", "report_dir", "started"}],
     "components": [{"name", "health", "pid", "restarts", "last_exit", "last_restart_s",
                     "endpoints": [{"name", "url"}], "why"?, "log_tail"?, "log"?}]}
Exit status: 0 when the lab runs, every component is healthy and the lab comes from this
checkout (lab/origin.py); 1 otherwise (no lab: "running": false and "problem" says why).
"""
import json
import sys
from dataclasses import asdict
from pathlib import Path

from lab import component_base, components, origin, supervisor, topology, users


def _health(c: dict, run: component_base.LabRun) -> str:
    comp = components.BY_NAME.get(c["name"])
    if c["state"] in ("restarting", "failed"):
        return c["state"]
    if not supervisor.alive(c["pid"]):
        return c["state"] if c["state"].startswith("exited") else "not running"
    if comp is not None and comp.healthy(run):
        return "healthy"
    return "unhealthy" if c["state"] == "healthy" else c["state"]


def no_lab_reason(run_dir: Path) -> str:
    """Why there is no lab in run_dir, in one line that says what to do."""
    if supervisor.pid_file(run_dir).exists():   # the supervisor died without tidying up
        return (f"no lab running in {run_dir}: its supervisor.pid is stale (a killed lab); "
                f"`python -m lab down --run-dir {run_dir}` tidies it")
    if (run_dir / "target.yaml").exists():
        return (f"no lab running in {run_dir}: that is a target directory; the run dir is "
                f"its parent, --run-dir {run_dir.parent}")
    holder = net_holder()
    if holder is not None and Path(holder) != run_dir:
        return (f"no lab running in {run_dir}; the lab on {topology.NET} runs from "
                f"--run-dir {holder}")
    return f"no lab running on {topology.NET} in {run_dir}"


def net_holder() -> str | None:
    """The run dir of the live lab on this NET, read without taking its lock (a lock taken
    even for an instant could refuse a `lab up` starting at that moment)."""
    try:
        holder = supervisor.lock_path().read_text().strip()
    except OSError:
        return None
    return holder if holder and users.supervisor_alive(Path(holder)) else None


def gather(run_dir: Path) -> dict:
    """The status document (shape in the module docstring)."""
    pid = supervisor.read_pid(run_dir)
    doc: dict = {"running": pid is not None, "net": topology.NET, "run_dir": str(run_dir)}
    if pid is None:
        return {**doc, "problem": no_lab_reason(run_dir)}
    state = supervisor.read_state(run_dir)
    run = component_base.LabRun(run_dir)
    target = run.target_dir / "target.yaml"
    doc.update(problem=None, supervisor_pid=pid, checkout=state.get("checkout"),
               python=state.get("python"),
               target=str(target) if target.exists() else None,
               runs=[{k: v for k, v in asdict(u).items() if k != "start_time"}
                     for u in users.live_runs(run_dir)],
               components=[])
    for c in state.get("components", []):
        comp = components.BY_NAME.get(c["name"])
        entry = {"name": c["name"], "health": _health(c, run), "pid": c["pid"],
                 "restarts": c.get("restarts", 0), "last_exit": c.get("last_exit"),
                 "last_restart_s": c.get("last_restart_s"),
                 "endpoints": [{"name": n, "url": u}
                               for n, u in (comp.endpoints if comp else ())]}
        if c["state"] == "failed":
            entry.update(why=c.get("why", ""), log_tail=c.get("log_tail", []),
                         log=str(supervisor.log_file(run_dir, c["name"])))
        doc["components"].append(entry)
    # After the components: another checkout's healthy lab is said to be healthy (origin.py)
    doc["problem"] = origin.problem(state, run_dir, healthy=all(
        c["health"] == "healthy" for c in doc["components"]))
    return doc


def ok(doc: dict) -> bool:
    return doc["running"] and not doc["problem"] and \
        all(c["health"] == "healthy" for c in doc["components"])


def render(doc: dict) -> list[str]:
    """The text form: a header, the runs, then one table of components and endpoints."""
    if not doc["running"]:
        return [doc["problem"]]
    origin_text = (f", started from {doc['checkout']} (python {doc['python']})"
                   if doc.get("checkout") else "")
    lines = [f"lab {doc['net']}: supervisor pid {doc['supervisor_pid']}, "
             f"run dir {doc['run_dir']}{origin_text}"]
    lines += [f"  used by run {users.RunUse(start_time='', **r).describe()}"
              for r in doc["runs"]] or ["  used by no run"]
    comps = doc["components"]
    rows = [("component", "health", "pid", "endpoint", "URL")]
    notes: dict[int, list[str]] = {}
    for c in comps:
        eps = c["endpoints"] or [{"name": "", "url": ""}]
        for i, ep in enumerate(eps):
            # The restarts ride on the component's first row: `grep '^  datera '` finds all.
            head = (c["name"], c["health"], f"pid {c['pid']}") if i == 0 else ("", "", "")
            rows.append((*head, ep["name"], ep["url"] + (_restarts(c) if i == 0 else "")))
        notes[len(rows) - 1] = _down(c)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for n, row in enumerate(rows):
        lines.append(("  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths))
                      + f"  {row[4]}").rstrip())
        lines += notes.get(n, [])
    if doc["target"]:
        lines.append(f"target: {doc['target']}")
    return lines


def _restarts(c: dict) -> str:
    if not (c["restarts"] or c["last_exit"]):
        return ""
    back = f", back in {c['last_restart_s']:.2f}s" if c.get("last_restart_s") else ""
    return f"  (restarts {c['restarts']}, last: {c['last_exit']}{back})"


def _down(c: dict) -> list[str]:
    if c["health"] != "failed":
        return []
    return ([f"    DOWN: {c['name']} {c.get('why', '')}; last lines of {c['log']}:"]
            + [f"      {line}" for line in c.get("log_tail", [])])


def run(run_dir: Path, as_json: bool) -> int:
    doc = gather(run_dir)
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        print("\n".join(render(doc)))
    if doc["running"] and doc["problem"]:
        print(f"lab: {doc['problem']}", file=sys.stderr)
    return 0 if ok(doc) else 1
