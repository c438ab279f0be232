"""`python -m lab chaos ...`: the chaos switch on a running lab.

    python -m lab chaos errors  --service datera --status 503 --rate 0.05 [--for 120s]
    python -m lab chaos reset   --service glance --rate 0.02 [--cloud pike] [--for 2m]
    python -m lab chaos latency --service cinder --ms 200 [--cloud newton] [--for 30s]
    python -m lab chaos vip-down VIP1 [--for 10s]
    python -m lab chaos kill datera              # SIGKILL; the supervisor restarts it
    python -m lab chaos kill kubernetes --all    # and the programs it runs detached (etcd,
                                                 # the control plane: lab/detached.py)
    python -m lab chaos clear [RULE_ID ...]      # every rule, or the named ones
    python -m lab chaos status

Each takes --run-dir (default /tmp/vancouver-lab-<NET>). Rules live in <run dir>/chaos.json
(lab/chaos.py); each command prints one line; a bad value is one line naming it (status 2),
checked before the lab is looked for. A rule for the same kind, service and cloud (or VIP) as
an active one replaces it (`status` shows which it replaced). Exit status 1: no lab runs there.
"""
import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path

from lab import chaos, usage

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


def duration(text: str) -> float:
    """'120s', '2m', '1.5h', '90' (seconds) -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a positive duration like 30s, 2m or 1h")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def rate(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a share like 0.05 or 5%") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a share above 0 and at most 1")
    return value


def add_parser(sub, run_dir_arg) -> None:
    """Adds `chaos` and its commands to the lab's subparsers; run_dir_arg(parser) adds
    --run-dir to each."""
    p = sub.add_parser("chaos", help="inject faults into a running lab")
    cmds = p.add_subparsers(dest="chaos_command", required=True, metavar="command")

    def service_args(q, with_rate: bool):
        q.add_argument("--service", required=True, choices=chaos.SERVICES)
        q.add_argument("--cloud", choices=chaos.CLOUDS, default=None,
                       help="only this cloud's service (OpenStack services)")
        if with_rate:
            q.add_argument("--rate", type=rate, default=1.0,
                           help="share of requests hit, 0..1 or N%% (default 1)")

    def for_arg(q):
        q.add_argument("--for", dest="for_s", type=duration, default=None,
                       help="how long (30s, 2m; written --for=30s too); default until "
                            "`chaos clear`")

    q = cmds.add_parser("errors", help="answer HTTP 5xx with the API's own error body")
    service_args(q, True)
    q.add_argument("--status", type=int, choices=chaos.ERROR_STATUSES, default=503)
    for_arg(q)
    q = cmds.add_parser("reset", help="reset the connection (TCP RST) instead of answering")
    service_args(q, True)
    for_arg(q)
    q = cmds.add_parser("latency", help="add latency to every request")
    service_args(q, False)
    q.add_argument("--ms", type=int, required=True)
    for_arg(q)
    q = cmds.add_parser("vip-down", help="the Datera data plane stops serving a VIP's portal")
    q.add_argument("vip", choices=chaos.VIPS)
    for_arg(q)
    q = cmds.add_parser("kill", help="SIGKILL a component (the supervisor restarts it)")
    q.add_argument("component")
    q.add_argument("--all", action="store_true",
                   help="also the programs the component runs in sessions of their own, which "
                        "a kill of its process leaves running (Kubernetes: etcd, kube-apiserver, "
                        "controller-manager, scheduler)")
    q = cmds.add_parser("clear", help="remove rules: all, or those named")
    q.add_argument("ids", nargs="*")
    cmds.add_parser("status", help="list the active rules")
    for q in cmds.choices.values():
        run_dir_arg(q)


# chaos.validate names a Rule's fields (demo.yaml's chaos entries use the same names); the
# command line calls them by its options.
_OPTION_OF_FIELD = re.compile(r"^(service|cloud|status|rate|ms)\b")


def _as_option(problem: str) -> str:
    """'ms -5: expected 1..60000' -> '--ms -5: expected 1..60000'."""
    return _OPTION_OF_FIELD.sub(r"--\1", problem, count=1)


def _rule(args) -> chaos.Rule:
    """The rule a rule command asks for; ValueError names a bad value."""
    until = time.time() + args.for_s if args.for_s else None
    if args.chaos_command == "vip-down":
        return chaos.validate(chaos.Rule(kind="vip-down", vip=args.vip, until=until))
    return chaos.validate(chaos.Rule(
        kind=args.chaos_command, service=args.service, cloud=args.cloud,
        status=getattr(args, "status", None), rate=getattr(args, "rate", 1.0),
        ms=getattr(args, "ms", 0), until=until))


def run(args, run_dir: Path) -> int:
    from lab import supervisor
    cmd = args.chaos_command
    rule = None
    if cmd in chaos.KINDS:
        try:   # bad input is bad whether or not a lab runs
            rule = _rule(args)
        except ValueError as e:
            return usage.error(f"chaos {cmd}", _as_option(str(e)))
    if supervisor.read_pid(run_dir) is None:
        print(f"lab: no lab running in {run_dir}", file=sys.stderr)
        return 1
    path = chaos.control_path(run_dir)
    if cmd == "kill":
        return _kill(run_dir, args.component, args.all)
    if cmd == "clear":
        if args.ids:
            known = {r.id for r in chaos.read_rules(path) if r.active(time.time())}
            unknown = sorted(set(args.ids) - known)
            if unknown:   # a typo must not look like a cleared fault
                return usage.error("chaos clear", f"no active rule {', '.join(unknown)}",
                                   see="python -m lab chaos status")
        n = chaos.remove_rules(path, set(args.ids) if args.ids else None)
        print(f"chaos: cleared {n} rule(s)")
        return 0
    if cmd == "status":
        rules = [r for r in chaos.read_rules(path) if r.active(time.time())]
        print(f"chaos: {len(rules)} active rule(s)" + (" (one per kind, service and cloud or "
                                                      "VIP):" if rules else ""))
        for r in rules:
            print("  " + r.describe())
        return 0
    rule = chaos.add_rule(path, rule)
    print(f"chaos: {rule.describe()}")
    return 0


def _kill(run_dir: Path, name: str, everything: bool = False) -> int:
    from lab import detached, supervisor
    comps = {c["name"]: c for c in supervisor.read_state(run_dir).get("components", [])}
    if name not in comps:
        return usage.error("chaos kill", f"no component {name!r} in this lab; it has "
                                         f"{', '.join(comps) or 'none'}",
                           see="python -m lab status")
    pid = comps[name]["pid"]
    if not supervisor.alive(pid):
        print(f"lab: chaos kill: {name} is not running ({comps[name]['state']})", file=sys.stderr)
        return 1
    os.killpg(pid, signal.SIGKILL)   # the component's process group (it leads it)
    extra = detached.kill(run_dir / name) if everything else []
    print(f"chaos: killed {name} (pid {pid}) with SIGKILL"
          + (f" and {', '.join(r.name for r in extra) or 'no detached program'}" if everything
             else "") + "; the supervisor restarts it")
    return 0
