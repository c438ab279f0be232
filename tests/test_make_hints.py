"""Every `make <target>` a message or the README tells a user to run is a target of the
Makefile. conformance/run.py told a user without Tempest to run `make conformance-setup`, which
never existed (the target is tempest-venv); `make clean-demo`'s hints once named --target
where make takes TARGET= (tests/test_cleanup_cli.py)."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# `make x-y` in the sources; a one-word `make x` there is as often English ("make sure"), so
# those are checked only in the README's code spans, where they are always commands.
HYPHENATED = re.compile(r"\bmake ([a-z][a-z0-9]*(?:-[a-z0-9]+)+)\b")
README_COMMAND = re.compile(r"`make ([a-z][a-z0-9-]*)")


def targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*)\s*:(?!=)", text, re.MULTILINE))


def test_every_make_target_named_to_a_user_exists():
    known = targets()
    assert {"setup", "demo", "test", "clean-demo", "tempest-venv"} <= known, known
    named = {}
    for d in ("clients", "fixtures", "lab", "conformance", "bench", "scenarios"):
        for path in (REPO / d).rglob("*.py"):
            for name in HYPHENATED.findall(path.read_text()):
                named.setdefault(name, str(path.relative_to(REPO)))
    for name in README_COMMAND.findall((REPO / "README.md").read_text()):
        named.setdefault(name, "README.md")
    unknown = {name: where for name, where in named.items() if name not in known}
    assert unknown == {}, unknown
