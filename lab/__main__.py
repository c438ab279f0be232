"""python -m lab up|down|status: the embedded lab's command line.

    python -m lab up [--only datera,ldap] [--run-dir DIR] [--foreground]
    python -m lab down [--force] [--run-dir DIR]
    python -m lab status [--json] [--run-dir DIR]
    python -m lab chaos errors|reset|latency|vip-down|kill|clear|status ... (lab/chaos_cli.py)

`up` starts a detached supervisor and returns once every component is healthy, printing the
target.yaml path; `--foreground` keeps the supervisor in this terminal until Ctrl-C.
`status` shows every endpoint per component and the runs that use the lab (lab/users.py;
lab/status_cli.py); `down` refuses, in one line and with status 1, to stop a lab a live run
uses, unless `--force`. Usage errors (a bad option, --run-dir or VANCOUVER_LAB_NET) are one
line with status 2.
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

UP_TIMEOUT_S = 180.0   # the supervisor's own per-component deadlines fire well before this


class _Parser(argparse.ArgumentParser):
    """argparse with bad input as ONE line naming the option and the value (status 2), as
    the lab's own checks answer; usage stays with --help."""

    def error(self, message: str):
        from lab import usage
        command = self.prog.removeprefix("python -m ").removeprefix("lab").strip()
        self.exit(usage.USAGE_STATUS, usage.line(command, _one_line(message)) + "\n")


_CHOICE = re.compile(r"argument (\S+): invalid choice: (.+?) \(choose from (.+)\)$")
_TYPED = re.compile(r"argument (\S+): invalid (\w+) value: (.+)$")


def _one_line(message: str) -> str:
    """argparse's messages in the form `--option value: expected ...`."""
    if m := _CHOICE.match(message):
        choices = [c for c in m[3].replace("'", "").split(", ") if not c.startswith("_")]
        return f"{m[1]} {m[2]}: expected one of {', '.join(choices)}"
    if m := _TYPED.match(message):
        kind = {"int": "a whole number", "float": "a number"}.get(m[2], m[2])
        return f"{m[1]} {m[3]}: expected {kind}"
    if m := re.match(r"argument (\S+): expected one argument$", message):
        return f"{m[1]}: expected a value"
    if m := re.match(r"the following arguments are required: (.+)$", message):
        return f"missing {m[1]}"
    if m := re.match(r"argument (\S+): (.+)$", message):
        return f"{m[1]} {m[2]}"
    return message


def _join_dash_values(argv: list[str]) -> list[str]:
    """`--for -3s` -> `--for=-3s`: argparse takes a value starting with '-' for an option and
    answers only "expected one argument"; joined, the option's own check names the value."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and \
                re.match(r"-[\d.]", token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


_EPILOG = """\
The lab binds 127.N.x.y only: VANCOUVER_LAB_NET=127.N (default 127.0) picks the net, one lab
per net; its run dir is /tmp/vancouver-lab-<NET> unless --run-dir says otherwise (the same
--run-dir then for status, down and chaos). `up` prints the target.yaml to give pytest
(--target); `status` lists every endpoint to point a client at (--json for scripts).
"""


def parser() -> argparse.ArgumentParser:
    """The command line's parser; each (sub)command's parser is `parser` in its namespace."""
    parser = _Parser(prog="python -m lab", description="The embedded lab.", epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    # metavar: the internal _supervise stays out of the usage line
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    up = sub.add_parser("up", help="start the lab and write its target directory")
    up.add_argument("--only", default=None,
                    help="comma-separated components (their dependencies come along)")
    up.add_argument("--foreground", action="store_true",
                    help="run the supervisor in this terminal until Ctrl-C")
    down = sub.add_parser("down", help="stop the lab (refused while a run uses it)")
    down.add_argument("--force", action="store_true",
                      help="stop it even while runs use it (they see an outage)")
    status = sub.add_parser("status", help="show the lab's components, endpoints and users")
    status.add_argument("--json", action="store_true",
                        help="one JSON document instead of the table (shape: lab/status_cli.py)")
    sup = sub.add_parser("_supervise")   # internal: the detached supervisor process
    sup.add_argument("--only", default=None)
    sup.add_argument("--ready-fd", type=int, required=True)
    for p in sub.choices.values():
        _run_dir_arg(p)
    from lab import chaos_cli
    chaos_cli.add_parser(sub, _run_dir_arg)
    _own_parser_in_namespace(parser)
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    args, extras = parser().parse_known_args(_join_dash_values(argv))
    if extras:
        # argparse leaves what no parser took to the top one ("lab: unrecognized arguments"):
        # the command's own parser names it, as for every other mistake in that command.
        args.parser.error(_unrecognized(extras))
    return args


def _own_parser_in_namespace(parser: argparse.ArgumentParser) -> None:
    """Every (sub)command's parser sets `parser` to itself; the innermost one parsed wins
    (argparse applies a subcommand's defaults over its parent's)."""
    parser.set_defaults(parser=parser)
    for action in parser._actions:   # argparse has no public walk over its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _own_parser_in_namespace(sub)


def _unrecognized(extras: list[str]) -> str:
    options = [e.split("=", 1)[0] for e in extras if e.startswith("-")]
    others = [repr(e) for e in extras if not e.startswith("-")]
    parts = []
    if options:
        parts.append(f"unknown option{'s' if len(options) > 1 else ''} {', '.join(options)}")
    if others:
        parts.append(f"unexpected argument{'s' if len(others) > 1 else ''} {', '.join(others)}")
    return "; ".join(parts)


def _run_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, default=None,
                   help="the lab's run directory (default /tmp/vancouver-lab-<NET>)")


def _adopt_recorded_net(run_dir: Path | None) -> None:
    """`down`/`status` act on the lab in run_dir, whatever VANCOUVER_LAB_NET says now.
    Must run before lab.topology is imported."""
    if run_dir is None:
        return
    try:
        net = json.loads((run_dir / "state.json").read_text())["net"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    os.environ["VANCOUVER_LAB_NET"] = net


def _only(value: str | None) -> list[str] | None:
    """--only's components; None when not given (the whole lab). ValueError (the usage
    line's problem) for an empty list or an unknown name: `--only ''` must not start the
    whole lab, nor a typo fail as the lab's own error (status 1)."""
    if value is None:
        return None
    from lab import components
    names = [n.strip() for n in value.split(",") if n.strip()]
    known = ", ".join(components.BY_NAME)
    if not names:
        raise ValueError(f"--only {value!r}: expected comma-separated components ({known})")
    unknown = [n for n in names if n not in components.BY_NAME]
    if unknown:
        raise ValueError(f"--only {value!r}: unknown component{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}: expected some of {known}")
    return names


def _setup_logging() -> None:
    import logging
    from lab import logsetup
    logsetup.configure(logging.INFO, "%(asctime)s %(name)s %(levelname)s %(message)s")


def _up(run_dir: Path, only: list[str] | None, foreground: bool) -> int:
    from lab import component_base, components, runfiles, supervisor, topology
    selected = components.select(only)
    _refuse_a_stale_lab(run_dir)
    supervisor.preflight(run_dir, selected)
    runfiles.make_private(run_dir)   # 0700, umask 077: it holds the lab's secrets
    if foreground:
        _setup_logging()

        def report(ok: bool, text: str) -> None:
            print(text if ok else f"lab: {text}", file=sys.stdout if ok else sys.stderr,
                  flush=True)
            if ok:
                print("lab running; Ctrl-C stops it", file=sys.stderr, flush=True)

        return supervisor.Supervisor(run_dir, selected).run_forever(report)

    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    sup_log = supervisor.log_file(run_dir, "supervisor")
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, VANCOUVER_LAB_NET=topology.NET,
               PYTHONPATH=os.pathsep.join(p for p in (str(component_base.REPO_ROOT),
                                                      os.environ.get("PYTHONPATH")) if p))
    with open(sup_log, "ab") as out:
        # Its own session: the lab outlives this command and a Ctrl-C in this terminal. Its
        # output goes to the log, never to our stdout, which a caller may be capturing.
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab", "_supervise", "--run-dir", str(run_dir),
             "--only", ",".join(c.name for c in selected), "--ready-fd", str(write_fd)],
            pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=run_dir)
    os.close(write_fd)
    try:
        message = _read_report(read_fd, UP_TIMEOUT_S)
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        print("lab: interrupted; stopped what had started", file=sys.stderr)
        return 130
    finally:
        os.close(read_fd)
    if message is None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            print(f"lab: not healthy within {UP_TIMEOUT_S:.0f}s; see {sup_log}", file=sys.stderr)
        else:
            print(f"lab: supervisor exited: {supervisor.last_line(sup_log)}", file=sys.stderr)
        return 1
    if not message.get("ok"):
        proc.wait()
        print(f"lab: {message.get('text')}", file=sys.stderr)
        return 1
    print(message["text"])
    return 0


def _refuse_a_stale_lab(run_dir: Path) -> None:
    """A running lab (in run_dir, or anywhere on this net) from a deleted or different
    checkout: LabError with the one line that says so (lab/origin.py), before preflight's
    "already running: use it" points the user at a lab that cannot work."""
    from lab import origin, status_cli, supervisor
    from lab.component_base import LabError
    for d in (run_dir, status_cli.net_holder()):
        if d is not None and supervisor.read_pid(Path(d)) is not None:
            problem = origin.problem(supervisor.read_state(Path(d)), Path(d))
            if problem:
                raise LabError(problem)


def _read_report(fd: int, timeout: float) -> dict | None:
    """The supervisor's one JSON line, or None if it closed the pipe (died) or timed out."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    return json.loads(data.split(b"\n", 1)[0])


def _supervise(run_dir: Path, only: list[str] | None, ready_fd: int) -> int:
    from lab import component_base, components, supervisor
    _setup_logging()
    pipe = os.fdopen(ready_fd, "w")

    def report(ok: bool, text: str) -> None:
        try:
            pipe.write(json.dumps({"ok": ok, "text": text}) + "\n")
            pipe.close()
        except OSError:
            pass  # `up` was interrupted; the lab runs on regardless

    try:
        selected = components.select(only)
    except component_base.LabError as e:
        report(False, str(e))
        return 1
    return supervisor.Supervisor(run_dir, selected).run_forever(report)


def _down(run_dir: Path, force: bool) -> int:
    from lab import supervisor, users
    if not run_dir.is_dir():   # only the default run dir gets here (_check_run_dir)
        print(f"no lab running in {run_dir}")
        return 0
    # Held from the in-use check until the lab is gone: a run registering meanwhile waits,
    # then finds no lab and says so (users.LabStopping), instead of registering on a corpse.
    with users.locked(run_dir):
        runs = users.live_runs(run_dir) if supervisor.read_pid(run_dir) is not None else []
        if runs and not force:
            print(f"lab: not stopped, {users.in_use_message(runs)}: stop "
                  f"{'those runs' if len(runs) > 1 else 'that run'} first (Ctrl-C), or "
                  "python -m lab down --force", file=sys.stderr)
            return 1
        print(supervisor.stop_lab(run_dir)
              + (f"; {len(runs)} run(s) using it lost it" if runs else ""))
    return 0


def _check_run_dir(given: Path | None, run_dir: Path, command: str) -> str | None:
    """A usage problem with --run-dir, in one line, or None. `up` creates a missing one;
    the other commands need an existing directory when one is named."""
    if run_dir.exists() and not run_dir.is_dir():
        return (f"--run-dir {given}: not a directory" if given else
                f"the run dir {run_dir} is not a directory: move it away, or give --run-dir")
    if given is None or command == "_supervise":
        return None
    if command == "up":
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return f"--run-dir {given}: cannot create it ({e.strerror or e})"
        if not os.access(run_dir, os.W_OK | os.X_OK):
            return f"--run-dir {given}: not writable by this user"
    elif not run_dir.is_dir():
        return f"--run-dir {given}: no such directory (no lab was started there)"
    return None


def main(argv: list[str]) -> int:
    from lab import usage
    args = _parse(argv)
    if args.command in ("down", "status", "chaos"):
        _adopt_recorded_net(args.run_dir)
    try:
        from lab import supervisor
    except SystemExit as e:   # lab.topology refuses a bad VANCOUVER_LAB_NET (or demo.yaml)
        if not isinstance(e.code, str):
            raise
        return usage.error("", e.code)
    from lab.component_base import LabError
    run_dir = (args.run_dir or supervisor.default_run_dir()).expanduser().resolve()
    if problem := _check_run_dir(args.run_dir, run_dir, args.command):
        return usage.error(args.command, problem)
    try:
        if args.command == "up":
            try:
                only = _only(args.only)
            except ValueError as e:
                return usage.error("up", str(e))
            return _up(run_dir, only, args.foreground)
        if args.command == "_supervise":
            return _supervise(run_dir, _only(args.only), args.ready_fd)
        if args.command == "down":
            return _down(run_dir, args.force)
        if args.command == "chaos":
            from lab import chaos_cli
            return chaos_cli.run(args, run_dir)
        from lab import status_cli
        return status_cli.run(run_dir, args.json)
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `lab status | head`: the reader left; as the Python docs advise, point stdout at
        # devnull so the interpreter's final flush does not fail again, and say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:   # e.g. a run dir that is a file, or not writable
        print(f"lab: {e.filename or run_dir}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
