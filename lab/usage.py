"""The one format of every `python -m lab` usage mistake (status 2): a single line naming
the command, the option or variable with its value, what was expected, and where to read
more, e.g.

    lab: chaos latency: --ms -5: expected 1..60000 (see python -m lab chaos latency --help)
"""
import sys

USAGE_STATUS = 2


def line(command: str, problem: str, see: str | None = None) -> str:
    """`command` as typed after `python -m lab` ('' for the lab itself); `see` overrides the
    pointer (default: that command's --help)."""
    prog = f"python -m lab {command}".strip()
    return (f"lab: {command + ': ' if command else ''}{problem} "
            f"(see {see or prog + ' --help'})")


def error(command: str, problem: str, see: str | None = None) -> int:
    """Prints the line to stderr; returns the usage status for main to exit with."""
    print(line(command, problem, see), file=sys.stderr)
    return USAGE_STATUS
