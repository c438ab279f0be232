"""The benchmarks' figure tables: one way to print them (aligned columns, one header row).

    print_table(["process", "start MB", "end MB"], [["controller", 81.2, 83.0]],
                formats={1: "{:.1f}", 2: "{:.1f}"}, note="goal: growth < 10 MB")

The first column and every column of text only are left-aligned (names), the others
right-aligned (figures); each column is as wide as its widest cell. A cell is formatted with its column's format ({} by default, so
strings and ints print as they are); `note` follows the header row after three spaces.
"""
from __future__ import annotations

from typing import Iterable, Sequence


def format_table(header: Sequence[str], rows: Iterable[Sequence], formats: dict | None = None,
                 note: str = "") -> str:
    formats = formats or {}
    rows = list(rows)
    cells = [[str(h) for h in header]] + [
        [(formats.get(i, "{}")).format(v) if not isinstance(v, str) else v
         for i, v in enumerate(row)] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    left = [i == 0 or all(isinstance(r[i], str) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        line = "  ".join(c.ljust(w) if left[i] else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))
        lines.append((line + (f"   {note}" if n == 0 and note else "")).rstrip())
    return "\n".join(lines)


def print_table(header: Sequence[str], rows: Iterable[Sequence], formats: dict | None = None,
                note: str = "") -> None:
    print(format_table(header, rows, formats, note), flush=True)
