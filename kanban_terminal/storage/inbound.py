"""Dedupe keys of inbound bin signals: (device, boot id, seq) already handled, and what each did.

Written in the same unit of work as the signal's effect (services/signals.py), so a QoS 1
redelivery or a device retry never raises a second request, while a device that rebooted (new boot
id, seq restarting at 0) is still heard. Plain multi-row statements on the driver connection, for
the reasons in scan_repo.py. It must not decide what a signal does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from kanban_terminal.storage import batches
from kanban_terminal.storage.types import to_text

Key = tuple[str, str, int]
"""(device, boot id, seq)."""


class InboundKeys:
    """The inbound signal keys inside a unit of work (`UnitOfWork.inbound`)."""

    def __init__(self, sql: Any, flush: Callable[[], None]):
        """Args:
        sql: the unit of work's driver connection.
        flush: the unit's `flush`, run before the outcomes are written beside the keys.
        """
        self._sql = sql
        self._flush = flush

    def claim(self, keys: Sequence[Key], at: datetime) -> list[bool]:
        """Insert the keys; True for each heard for the first time.

        A key already stored (a QoS 1 redelivery, a device retry) or met earlier in `keys` is a
        duplicate. One multi-row INSERT a chunk: `RETURNING` names the keys it really inserted.
        """
        at_text = to_text(at)
        claimed: set[Key] = set()
        for chunk in batches.chunks(keys):
            marks, params = batches.values([(*key, at_text, "") for key in chunk])
            rows = self._sql.execute(
                "INSERT OR IGNORE INTO inbound_signal (device, boot, seq, received_at, outcome) "
                f"VALUES {marks} RETURNING device, boot, seq",
                params,
            ).fetchall()
            claimed.update((d, b, int(q)) for d, b, q in rows)
        fresh = []
        for key in keys:
            fresh.append(key in claimed)
            claimed.discard(key)  # a second copy in the same batch is a duplicate
        return fresh

    def record_outcomes(self, outcomes: Sequence[tuple[str, str, int, str]]) -> None:
        """Store what each applied signal did beside its key (device, boot, seq, outcome)."""
        self._flush()
        for chunk in batches.chunks(outcomes):
            marks, params = batches.values(chunk)
            self._sql.execute(
                f"UPDATE inbound_signal SET outcome = v.column4 FROM (VALUES {marks}) AS v "
                "WHERE device = v.column1 AND boot = v.column2 AND seq = v.column3",
                params,
            )

    def prune(self, before: datetime) -> int:
        """Forget keys received before `before`; returns how many."""
        deleted: int = self._sql.execute(
            "DELETE FROM inbound_signal WHERE received_at < ?", (to_text(before),)
        ).rowcount
        return deleted
