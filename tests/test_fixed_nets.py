"""Each test module that starts labs of its own on a fixed VANCOUVER_LAB_NET has nets no other
module uses: `make test` runs those modules side by side, and two labs on one net would take each
other's addresses, ports and run directory (tests/support/labcli.py lists the nets)."""
import ast
import re
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
NET = re.compile(r"127\.\d{1,3}")


def fixed_nets(path: Path) -> set[str]:
    """String constants of `path` that are a whole lab net ("127.N")."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and NET.fullmatch(node.value)}


def test_no_two_test_modules_share_a_fixed_lab_net():
    users = defaultdict(set)
    for path in sorted(TESTS.rglob("*.py")):
        for net in fixed_nets(path):
            users[net].add(str(path.relative_to(TESTS)))
    shared = {net: sorted(mods) for net, mods in users.items() if len(mods) > 1}
    assert users, "no fixed nets found: the scan no longer sees the modules' NET constants"
    assert not shared, f"fixed lab nets used by more than one module: {shared}"
