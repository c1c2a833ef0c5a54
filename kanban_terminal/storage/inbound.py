"""Dedupe keys of inbound bin signals: (device, boot id, seq) already handled, and what each did.

Written in the same unit of work as the signal's effect (services/signals.py), so a QoS 1
redelivery or a device retry never raises a second request, while a device that rebooted (new boot
id, seq restarting at 0) is still heard. Plain multi-row statements on the driver connection, for
the reasons in scan_repo.py. It must not decide what a signal does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kanban_terminal.storage import batches
from kanban_terminal.storage.types import to_text

Key = tuple[str, str, int]
"""(device, boot id, seq)."""

SEEN = (
    "SELECT s.device, s.boot, s.seq FROM (VALUES {}) AS v JOIN inbound_signal s "
    "ON s.device = v.column1 AND s.boot = v.column2 AND s.seq = v.column3"
)
"""The stored ones of some keys: a primary-key search a key. As `(device, boot, seq) IN (VALUES ...)`
SQLite searched by key only for one key; for two or more it scanned every key kept (14 days of
them), 20 ms a group at 200,000 keys (EXPLAIN QUERY PLAN, tests/integration/test_signal_pages.py)."""


class InboundKeys:
    """The inbound signal keys inside a unit of work (`UnitOfWork.inbound`).

    One write a key: `seen` reads which keys are stored, the caller applies the fresh signals, and
    `record` inserts each fresh key with its outcome. Before, the key went in first with an empty
    outcome and an UPDATE wrote the outcome after: two writes of the same rows and one statement
    more a group (issue 19). Exactly-once is the same: the unit of work holds the write lock from
    BEGIN IMMEDIATE, so no writer can store a key between the read and the insert, and the keys
    commit with their effect or not at all.
    """

    def __init__(self, sql: Any):
        """Args:
        sql: the unit of work's driver connection.
        """
        self._sql = sql

    def seen(self, keys: Sequence[Key]) -> list[bool]:
        """False for each key heard for the first time; True for a key already stored (a QoS 1
        redelivery, a device retry) or met earlier in `keys`. Reads only."""
        stored: set[Key] = set()
        unique = list(dict.fromkeys(keys))
        for chunk in batches.chunks(unique):
            marks, params = batches.values(chunk)
            rows = self._sql.execute(SEEN.format(marks), params).fetchall()
            stored.update((d, b, int(q)) for d, b, q in rows)
        first: set[Key] = set()
        out = []
        for key in keys:
            out.append(key in stored or key in first)
            first.add(key)
        return out

    def record(self, outcomes: Sequence[tuple[str, str, int, str]], at: datetime) -> None:
        """Store each fresh key (device, boot, seq) with what its signal did, received at `at`.

        A plain INSERT, not OR IGNORE: a key stored meanwhile would mean a second effect, and the
        constraint error rolls the whole group back instead of hiding it."""
        at_text = to_text(at)
        rows = [(d, b, q, at_text, outcome) for d, b, q, outcome in outcomes]
        for chunk in batches.chunks(rows):
            marks, params = batches.values(chunk)
            self._sql.execute(
                f"INSERT INTO inbound_signal (device, boot, seq, received_at, outcome) VALUES {marks}", params
            )

    def prune(self, before: datetime) -> int:
        """Forget keys received before `before`; returns how many."""
        deleted: int = self._sql.execute(
            "DELETE FROM inbound_signal WHERE received_at < ?", (to_text(before),)
        ).rowcount
        return deleted
