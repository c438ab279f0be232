"""Where a running lab comes from: the checkout and the Python its supervisor runs.

Every component of a lab runs `python -m ...` (and the vCenter's guests run Python files) from
the checkout and interpreter that started it, recorded in state.json as "checkout" and
"python". A lab left running while its checkout is deleted (or its venv rebuilt elsewhere)
fails later in confusing ways: a restarted component or a new guest finds no files. So `lab
status` and `lab up` check the record first and say so in one line. A lab from another
checkout that still exists works, but runs that checkout's code, not this one's: said too.
"""
import sys
from pathlib import Path

from lab.component_base import REPO_ROOT


def record() -> dict:
    """This process's origin, as state.json keeps it."""
    return {"checkout": str(REPO_ROOT), "python": sys.executable}


def problem(state: dict, net: str, down_hint: str = "python -m lab down") -> str | None:
    """One line when the lab of `state` (state.json) cannot be trusted from this checkout,
    else None (also for a lab that has written no record yet, or one from before it)."""
    checkout, python = state.get("checkout"), state.get("python")
    if not checkout:
        return None
    if not (Path(checkout) / "lab" / "__main__.py").is_file():
        why = "gone"
    elif python and not Path(python).is_file():
        why = f"its python {python} is gone"
    elif Path(checkout).resolve() != REPO_ROOT:
        why = f"another checkout; this one is {REPO_ROOT}"
    else:
        return None
    return (f"lab on {net} was started from {checkout} ({why}): run `{down_hint}` and "
            "`lab up` again")
