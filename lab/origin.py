"""Where a running lab comes from: the checkout and the Python its supervisor runs.

Every component of a lab runs `python -m ...` (and the vCenter's guests run Python files) from
the checkout and interpreter that started it, recorded in state.json as "checkout" and
"python". A lab left running while its checkout is deleted (or its venv rebuilt elsewhere)
fails later in confusing ways: a restarted component or a new guest finds no files. So `lab
status` and `lab up` check the record first and say so in one line. A lab from another
checkout that still exists works, but runs that checkout's code, not this one's: said too.
"""
import os
import sys
from pathlib import Path

from lab.component_base import REPO_ROOT


def record() -> dict:
    """This process's origin, as state.json keeps it."""
    return {"checkout": str(REPO_ROOT), "python": sys.executable}


def down_hint(run_dir: Path, net: str) -> str:
    """The `lab down` that reaches this lab from a shell with today's VANCOUVER_LAB_NET."""
    default = (Path(f"/tmp/vancouver-lab-{net}") == Path(run_dir)
               and (os.environ.get("VANCOUVER_LAB_NET") or "127.0") == net)
    return "python -m lab down" if default else f"python -m lab down --run-dir {run_dir}"


def problem(state: dict, run_dir: Path, other_checkout_too: bool = True,
            healthy: bool | None = None) -> str | None:
    """One line when the lab of `state` (its state.json in run_dir) cannot be trusted from
    this checkout, else None (also for a lab that has written no record yet, or one from
    before it). other_checkout_too=False: only a gone checkout or python counts (a run given
    --target may mean to use another checkout's lab). healthy: whether every component is
    (`status` knows; None: not said)."""
    checkout, python = state.get("checkout"), state.get("python")
    if not checkout:
        return None
    net = state.get("net", "?")
    if not (Path(checkout) / "lab" / "__main__.py").is_file():
        why = "gone"
    elif python and not Path(python).is_file():
        why = f"its python {python} is gone"
    elif other_checkout_too and Path(checkout).resolve() != REPO_ROOT:
        return _other_checkout(net, checkout, run_dir, healthy)
    else:
        return None
    return (f"lab on {net} was started from {checkout} ({why}): run "
            f"`{down_hint(run_dir, net)}` and `lab up` again")


def _other_checkout(net: str, checkout: str, run_dir: Path, healthy: bool | None) -> str:
    """Another checkout's lab works, for whoever works there: never advise stopping it, say
    what `down` would do to them, and how to get a lab of this checkout's code."""
    from lab import users
    runs = users.live_runs(run_dir)
    head = (f"lab on {net} was started from {checkout} (another checkout; this one is "
            f"{REPO_ROOT}) and runs that checkout's code")
    own = ("for this checkout's code start a lab of its own on another net "
           "(VANCOUVER_LAB_NET=127.N python -m lab up)")
    if runs:
        whom = "that run" if len(runs) == 1 else "those runs"
        return (f"{head}; it is {users.in_use_message(runs)}: `lab down` refuses, and "
                f"`--force` would end it for {whom}; {own}")
    state = {True: "healthy, ", False: "not healthy, "}.get(healthy, "")
    return (f"{head}; {state}used by no run now: `{down_hint(run_dir, net)}` would end it for "
            f"{checkout} too; {own}")
