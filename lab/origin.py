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


def problem(state: dict, run_dir: Path, other_checkout_too: bool = True) -> str | None:
    """One line when the lab of `state` (its state.json in run_dir) cannot be trusted from
    this checkout, else None (also for a lab that has written no record yet, or one from
    before it). other_checkout_too=False: only a gone checkout or python counts (a run given
    --target may mean to use another checkout's lab)."""
    checkout, python = state.get("checkout"), state.get("python")
    if not checkout:
        return None
    if not (Path(checkout) / "lab" / "__main__.py").is_file():
        why = "gone"
    elif python and not Path(python).is_file():
        why = f"its python {python} is gone"
    elif other_checkout_too and Path(checkout).resolve() != REPO_ROOT:
        why = f"another checkout; this one is {REPO_ROOT}"
    else:
        return None
    net = state.get("net", "?")
    return (f"lab on {net} was started from {checkout} ({why}): run "
            f"`{down_hint(run_dir, net)}` and `lab up` again")
