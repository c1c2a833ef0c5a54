"""Refused input kept for maintenance (`kanban-terminal rejected`), escaped by the caller.

Buffered like the scan's rows (scan_repo.py): a group of bin signals refuses many at once, and they
go to SQLite as one multi-row INSERT when the unit of work flushes. It must not escape or judge the
input: the use case has already done both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kanban_terminal.storage import batches
from kanban_terminal.storage.types import to_text

PER_DOOR = 200
"""Newest refusals kept per MQTT door: enough to see what a device keeps sending wrong."""
MQTT_TOTAL = 2000
"""Newest refusals kept over every MQTT door together."""
MQTT_DOORS = "mqtt:%"


class RejectedInputs:
    """`rejected_input` rows inside a unit of work (`UnitOfWork.rejected`)."""

    def __init__(self, sql: Any):
        self._sql = sql
        self._rows: list[tuple[object, ...]] = []

    def add(self, *, at: datetime, source: str, shown: str, reason: str) -> None:
        """Keep one refused input; `source` and `shown` already escaped."""
        self._rows.append((to_text(at), source, shown, reason))

    def flush(self) -> None:
        if not self._rows:
            return  # the usual case: every unit flushes this before its commit (issue 19)
        rows, self._rows = self._rows, []
        for chunk in batches.chunks(rows):
            marks, params = batches.values(chunk)
            self._sql.execute(
                f"INSERT INTO rejected_input (at, source, input, reason) VALUES {marks}", params
            )

    def trim(self, doors: Iterable[str]) -> None:
        """Keep each of `doors` to its newest `PER_DOOR` rows and the MQTT doors to `MQTT_TOTAL`.

        Writes out what is buffered first. Two indexed-by-rowid deletes; the subqueries scan
        `rejected_input`, which these caps keep small.
        """
        self.flush()
        for door in doors:
            self._sql.execute(
                "DELETE FROM rejected_input WHERE source = ?1 AND id < (SELECT id FROM rejected_input "
                "WHERE source = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                (door, PER_DOOR - 1),
            )
        self._sql.execute(
            "DELETE FROM rejected_input WHERE source LIKE ?1 AND id < (SELECT id FROM rejected_input "
            "WHERE source LIKE ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            (MQTT_DOORS, MQTT_TOTAL - 1),
        )
