"""Multi-row statements in a few fixed sizes, so that SQLite's statement cache can keep them.

A multi-row INSERT or `UPDATE ... FROM (VALUES ...)` is a new SQL text for every row count. Cut at a
fixed size, the remainder of each batch takes any count from 1 to that size, and a stream of signal
groups of varying size prepared a new statement for almost every group and pushed everything else
out of the connection's statement cache (the sqlite3 module keeps 128). Cut into powers of two, a
batch takes at most eight texts per statement, the same ones every time; a remainder of up to
`SMALL` rows goes whole (twelve texts then): a one-signal group whose PUBACK mark rides along writes
3 log rows, which as 2 + 1 cost one INSERT more a group (issue 19).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

LARGEST = 128
"""Rows in the biggest statement: 128 x 16 parameters, far below SQLite's 32,766."""

SMALL = 8
"""A remainder of at most this many rows is one statement (sizes 1-8, then 16, 32, 64, 128)."""

Row = TypeVar("Row")


def chunks(rows: Sequence[Row], largest: int = LARGEST) -> Sequence[Sequence[Row]]:
    """`rows` in order, cut into pieces of `largest` rows and then of falling powers of two."""
    # A one-signal group calls this ~15 times for one row or none: those get a tuple back at once,
    # without a generator to start and resume (issue 19; 2 Python calls a use, cProfile). `len`
    # once: halving 128 down to 1 with a `len` each time was 98,000 calls in 1,000 groups.
    total = len(rows)
    if total <= SMALL:
        return (rows,) if total else ()
    pieces = []
    start, size = 0, largest
    while start < total:
        remaining = total - start
        if remaining <= SMALL:
            pieces.append(rows[start:])
            break
        while size > remaining:
            size //= 2
        pieces.append(rows[start : start + size])
        start += size
    return pieces


_MARKS: dict[tuple[int, int], str] = {}


def values(rows: Sequence[Sequence[object]]) -> tuple[str, list[object]]:
    """`(?, ?), (?, ?)` for `rows` (all of one width) and their parameters, flattened."""
    shape = (len(rows[0]), len(rows))
    marks = _MARKS.get(shape)
    if marks is None:  # a few shapes only (`chunks`), built once each
        row = "(" + ", ".join("?" * shape[0]) + ")"
        marks = _MARKS[shape] = ", ".join([row] * shape[1])
    if shape[1] == 1:  # a one-signal group's usual row: no comprehension frame (issue 19)
        return marks, list(rows[0])
    return marks, [v for r in rows for v in r]
