"""The scan's write path in plain SQL: the one hot path of the terminal.

A scan reads one card and writes up to five rows in one fsynced transaction. Through the ORM's unit
of work that cost ~1.4 ms of Python per scan against a ~0.2 ms fsync (bench/scan_latency.py); as
prepared driver statements it costs a small fraction of that, so "accepted" shows as soon as the disk
has it. Everything else (catalog, queries, andon) stays on SQLModel where speed does not matter.

A group of bin signals is many scans in one unit of work (`storage/unit_of_work.py`, which owns a
store and flushes it before the commit; `services/signals.py`). Statement by
statement, a 256-signal group cost 12 statements a signal: 225-280 us a signal in-process against
117 us for the same statements in bare sqlite3, and 44 us for bare multi-row statements (2026-12-04,
20,000-card line). In `serve` every statement also lets go of the GIL and must win it back from
paho's busy thread. So `ScanStore` keeps a transaction's writes in memory and sends them as a few
multi-row statements when the transaction is about to commit; a single scan takes the same road
with a group of one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kanban_terminal.storage import batches
from kanban_terminal.storage.card_log import BufferedLog, LogEntry
from kanban_terminal.storage.log_key import LogKey
from kanban_terminal.storage.types import from_text, to_text


def driver(conn: Connection) -> Any:
    """The sqlite3 connection under `conn`, inside the transaction SQLAlchemy opened (BEGIN IMMEDIATE).

    SQLAlchemy's per-statement bookkeeping costs more than SQLite's execute on this path.
    """
    return conn.connection.driver_connection


@dataclass(frozen=True)
class StoredCard:
    state: str
    last_scan_at: datetime | None
    open_request_id: str | None
    request_raised_at: datetime | None
    retired: bool


_CARD_SQL = (
    "SELECT c.id, c.state, c.last_scan_at, c.open_request_id, r.raised_at, c.retired "
    "FROM card c LEFT JOIN replenishment_request r ON r.id = c.open_request_id WHERE c.id IN "
)
_TAKE_SEQ_SQL = (
    "UPDATE loop SET next_seq = next_seq + 1 WHERE id = ? "
    "RETURNING next_seq - 1, (SELECT source FROM loop_route r WHERE r.loop_id = loop.id)"
)
_REQUEST_COLUMNS = (
    "id, card_id, loop_id, loop_seq, part_number, quantity, station, point_of_use, source, raised_at, "
    "due_at, status, closed_at, lead_time_s, publish_state, publish_count"
)
_REQUEST_RAISED_AT, _REQUEST_STATUS, _REQUEST_CLOSED_AT, _REQUEST_LEAD_TIME = 9, 11, 12, 13


def _stored(row: Any) -> StoredCard:
    return StoredCard(
        row[1],
        from_text(row[2]) if row[2] else None,
        row[3],
        from_text(row[4]) if row[4] else None,
        bool(row[5]),
    )


class ScanStore:
    """The scan's reads and writes inside one open write transaction (BEGIN IMMEDIATE).

    Reads see the writes that are still waiting: a group that empties a card and then delivers it
    reads the request it raised itself. `flush()` must run before the transaction commits and
    before anything else on the connection reads or writes the tables a scan touches (cards,
    requests, loops, the card log); afterwards the store starts from the database again.
    """

    def __init__(self, sql: Any, log_key: LogKey | None = None):
        """`sql`: the sqlite3 connection inside the unit's open transaction (`driver(conn)`)."""
        self.db = sql
        self._cards: dict[str, StoredCard | None] = {}
        self._card_writes: dict[str, tuple[object, ...]] = {}
        self._seqs: dict[str, int] = {}
        """Each loop's next request sequence number as it will be after the flush."""
        self._seqs_stored: dict[str, int] = {}
        """...and as the database holds it now (the first take of a loop stores its own)."""
        self._requests: dict[str, list[object]] = {}
        self._closes: list[tuple[object, ...]] = []
        self._routes: dict[str, str | None] = {}
        self.log = BufferedLog(self.db, log_key)

    def prefetch(self, card_ids: list[str]) -> None:
        """Read these cards in one query (a group reads every card it will touch up front)."""
        wanted = [c for c in dict.fromkeys(card_ids) if c not in self._cards]
        for chunk in batches.chunks(wanted):
            for card_id in chunk:
                self._cards[card_id] = None
            marks = ", ".join("?" * len(chunk))
            for row in self.db.execute(f"{_CARD_SQL}({marks})", list(chunk)):
                self._cards[row[0]] = _stored(row)

    def read_card(self, card_id: str) -> StoredCard | None:
        if card_id not in self._cards:
            self.prefetch([card_id])
        return self._cards[card_id]

    def take_loop_seq(self, loop_id: str) -> int:
        """Return the loop's next request sequence number and advance it."""
        if loop_id not in self._seqs:
            # The first take advances the stored number itself and reads the loop's route with it:
            # one statement where a read of both and an UPDATE at the flush were two (issue 19:
            # a one-signal group's raise). Later takes of the loop in this unit count in memory.
            found = self.db.execute(_TAKE_SEQ_SQL, (loop_id,)).fetchall()
            if not found:  # the catalog sync writes every configured loop: the file is damaged
                raise sqlite3.DatabaseError(f"loop {loop_id} is missing from the database")
            seq, route = found[0]
            self._seqs[loop_id] = self._seqs_stored[loop_id] = int(seq) + 1
            self._routes.setdefault(loop_id, None if route is None else str(route))
            return int(seq)
        seq = self._seqs[loop_id]
        self._seqs[loop_id] = seq + 1
        return seq

    def source_of(self, loop_id: str, configured: str) -> str:
        """The loop's source now: where a team lead re-routed it (`loop_route`), else `configured`.
        One primary-key read per loop and transaction: 0.45 us per raise in a 256-signal group of
        ~100 us CPU a raise (bench/route_lookup.py, median of 12 rounds on a shared box)."""
        if loop_id not in self._routes:
            row = self.db.execute("SELECT source FROM loop_route WHERE loop_id = ?", (loop_id,)).fetchone()
            self._routes[loop_id] = str(row[0]) if row else None
        return self._routes[loop_id] or configured

    def insert_request(
        self,
        *,
        request_id: str,
        card_id: str,
        loop_id: str,
        loop_seq: int,
        part_number: str,
        quantity: int,
        station: str,
        point_of_use: str,
        source: str,
        raised_at: datetime,
        due_at: datetime,
        status: str,
    ) -> None:
        self._requests[request_id] = [
            request_id, card_id, loop_id, loop_seq, part_number, quantity, station, point_of_use, source,
            to_text(raised_at), to_text(due_at), status, None, None, "pending", 0,
        ]  # fmt: skip

    def close_request(self, request_id: str, *, status: str, at: datetime, lead_time_s: float | None) -> None:
        waiting = self._requests.get(request_id)
        if waiting is not None:
            # Raised and closed in one transaction: written once, closed. Inserting it open would
            # break the one-open-request-per-card index when the card raises its next request.
            waiting[_REQUEST_STATUS], waiting[_REQUEST_CLOSED_AT] = status, to_text(at)
            waiting[_REQUEST_LEAD_TIME] = lead_time_s
            return
        self._closes.append((status, to_text(at), lead_time_s, request_id))

    def update_card(
        self, card_id: str, *, state: str, at: datetime, open_request_id: str | None, scanned: bool = True
    ) -> None:
        """Write the card's new state. `scanned` False (a re-route): the card was not scanned, so its
        last scan time, which the debounce reads, stays what it was."""
        stamp = to_text(at)
        before = self.read_card(card_id)
        last_scan = at if scanned or before is None else before.last_scan_at
        scan_stamp = to_text(last_scan) if last_scan is not None else None
        self._card_writes[card_id] = (card_id, state, stamp, scan_stamp, stamp, open_request_id)
        raised_at: datetime | None = None
        if open_request_id in self._requests:
            raised_at = from_text(str(self._requests[open_request_id][_REQUEST_RAISED_AT]))
        elif before is not None and open_request_id == before.open_request_id:
            raised_at = before.request_raised_at
        elif open_request_id is not None:
            # An open request this store did not raise: the database must say when it was raised.
            self.flush()
            return
        if before is not None:  # the constructor: `dataclasses.replace` is ~4x its cost (issue 19)
            self._cards[card_id] = StoredCard(state, last_scan, open_request_id, raised_at, before.retired)

    def holds(self, request_ids: list[str], card_ids: list[str]) -> bool:
        """Whether a write of these requests or cards waits here (the outbox's PUBACK read then
        flushes first: storage/outbox.py `acknowledged`)."""
        # `isdisjoint` on the dict views, not `any()` over generators: this runs in every PUBACK
        # mark, and three generators were 6 Python calls of a one-signal group's ~540 (issue 19).
        closes = self._closes
        return (
            not self._card_writes.keys().isdisjoint(card_ids)
            or not self._requests.keys().isdisjoint(request_ids)
            or (bool(closes) and not {close[-1] for close in closes}.isdisjoint(request_ids))
        )

    def forget(self, card_ids: list[str]) -> None:
        """Drop what was read of these cards: a statement outside this store changed them."""
        for card_id in card_ids:
            self._cards.pop(card_id, None)

    def append_log(self, entry: LogEntry) -> None:
        self.log.append(entry)

    def flush(self) -> None:
        """Write everything waiting, in an order the constraints accept, and forget what was read."""
        if not (self._closes or self._requests or self.log.rows or self._card_writes or self._seqs):
            self._cards.clear()  # nothing to write (a unit flushes before each of its reads)
            self._routes.clear()
            return
        db = self.db
        if self._closes:  # first: a closed request frees its card for the request raised next
            db.executemany(
                "UPDATE replenishment_request SET status = ?, closed_at = ?, lead_time_s = ? WHERE id = ?",
                self._closes,
            )
        for chunk in batches.chunks([tuple(r) for r in self._requests.values()]):
            marks, params = batches.values(chunk)
            db.execute(f"INSERT INTO replenishment_request ({_REQUEST_COLUMNS}) VALUES {marks}", params)
        self.log.write()
        for chunk in batches.chunks(list(self._card_writes.values())):
            marks, params = batches.values(chunk)
            db.execute(
                "UPDATE card SET state = v.column2, state_since = v.column3, last_scan_at = v.column4, "
                f"last_seen_at = v.column5, open_request_id = v.column6 FROM (VALUES {marks}) AS v "
                "WHERE card.id = v.column1",
                params,
            )
        stored = self._seqs_stored
        taken: list[tuple[object, ...]] = [
            (loop, seq) for loop, seq in self._seqs.items() if stored[loop] != seq
        ]
        for chunk in batches.chunks(taken):
            marks, params = batches.values(chunk)
            db.execute(
                f"UPDATE loop SET next_seq = v.column2 FROM (VALUES {marks}) AS v WHERE loop.id = v.column1",
                params,
            )
        self._cards.clear()
        self._card_writes.clear()
        self._seqs.clear()
        self._seqs_stored.clear()
        self._requests.clear()
        self._closes.clear()
        self._routes.clear()
