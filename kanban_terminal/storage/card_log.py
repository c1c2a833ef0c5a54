"""Appending to the card log, the only way: every row chained by hash to the one before it.

The database already refuses UPDATE and DELETE on `card_log`; the chain makes an edit made behind
its back (a hand-edited file, a dropped trigger) detectable: `verify_chain` recomputes every hash and
names the first row that does not match. Writers hold the write lock (BEGIN IMMEDIATE), so the tail
read here cannot race another writer.

What the hash covers: the previous hash, both timestamps and the `ORIGINAL_FIELDS` (since 0001),
then, when a row carries any of the structured andon `FACTS` (since 0006), a `v2` marker and the
facts. A row without facts hashes exactly as before 0006, so every writer that has none (scans, the
relay, the catalog sync) and every old row stay valid. The facts migration 0006 derived for andon
rows written before it are not covered (their hash predates them): those rows say `backfilled`, and
a backfilled row is only believed where a backfill could have happened (an andon row).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from kanban_terminal.storage import batches
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.storage.types import to_text

GENESIS = "0" * 64
ORIGINAL_FIELDS = (
    "event", "card_id", "loop_id", "from_state", "to_state", "request_id", "actor", "source", "detail",
    "andon_id",
)  # fmt: skip
FACTS = ("andon_kind", "andon_reason", "station", "downtime_s")
"""Structured andon facts (migration 0006): written by the use case, read by metrics."""
FIELDS = ORIGINAL_FIELDS + FACTS
_N_ORIGINAL = len(ORIGINAL_FIELDS)
_TAIL_SQL = "SELECT hash FROM card_log ORDER BY id DESC LIMIT 1"


def row_hash(prev: str, row: Any) -> str:
    """SHA-256 over the previous hash and every field of the row (not its id)."""
    values = [getattr(row, f, None) for f in FIELDS]
    occurred, recorded = to_text(row.occurred_at), to_text(row.recorded_at)
    return chain_hash(prev, occurred, recorded, values, backfilled=bool(getattr(row, "backfilled", None)))


def _fact_text(value: object) -> str:
    # A number is hashed as a float's repr: SQLite's REAL column gives 28.0 back for an int 28.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return "" if value is None else str(value)


def chain_hash(
    prev: str, occurred_at: str, recorded_at: str, values: Sequence[object], *, backfilled: bool = False
) -> str:
    """The chain hash from stored text: lets bulk writers and `verify-log` skip building ORM rows.

    Args:
        prev: the previous row's hash (`GENESIS` for the first row).
        occurred_at: stored text of the timestamp (`types.to_text`); likewise `recorded_at`.
        recorded_at: see `occurred_at`.
        values: the `ORIGINAL_FIELDS` in order, optionally followed by the `FACTS` in order.
        backfilled: the row's facts were derived by migration 0006 after it was written; they are
            left out, as they were when its hash was made.

    Returns:
        The hex SHA-256 the row must carry.
    """
    # Written for speed: verify-log runs this a million times a year of log, and scans and the
    # relay once a row. Slices and `count` stay in C (1.3 vs 3.1 us a row with `any()` over a
    # generator; the pre-0006 function took 1.25 us).
    facts: Sequence[object] = ()
    if len(values) > _N_ORIGINAL:
        facts, values = values[_N_ORIGINAL:], values[:_N_ORIGINAL]
        if backfilled or facts.count(None) == len(facts):
            facts = ()
    parts = [prev, occurred_at, recorded_at]
    parts += ["" if v is None else str(v) for v in values]
    if facts:
        parts.append("v2")
        parts += [_fact_text(v) for v in facts]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def backfill_believable(andon_id: object) -> bool:
    """Migration 0006 backfilled andon rows only: a `backfilled` mark anywhere else is an edit."""
    return andon_id is not None


HASHED_FIELDS = FIELDS
_COLUMNS = {
    width: "occurred_at, recorded_at, " + ", ".join(fields) + ", hash"
    for width, fields in ((_N_ORIGINAL + 3, ORIGINAL_FIELDS), (len(FIELDS) + 3, FIELDS))
}


def insert_many(db: Any, rows: Sequence[tuple[object, ...]]) -> None:
    """Insert rows already hashed by `chain_hash` (occurred_at, recorded_at as stored text, the
    `ORIGINAL_FIELDS` or all `FIELDS` in order, the hash), in chain order, on a sqlite3 connection
    inside a transaction. All rows of one call have the same width.

    Why multi-row INSERTs and not `executemany`: every statement step lets go of the GIL and must
    take it back, and with paho's thread busy that wait was most of the 70 us a row cost in the
    relay's PUBACK batches (cProfile, 10,000-request drain: 0.71 s of the relay's 2.05 s).
    """
    for chunk in batches.chunks(rows):
        marks, params = batches.values(chunk)
        db.execute(f"INSERT INTO card_log ({_COLUMNS[len(chunk[0])]}) VALUES {marks}", params)


def append(session: Session, row: CardLogRow) -> CardLogRow:
    """Add `row` to the log inside the caller's ORM transaction, chained to the current tail."""
    prev = session.info.get("card_log_tail")
    if prev is None:
        prev = session.connection().exec_driver_sql(_TAIL_SQL).scalar() or GENESIS
    row.hash = row_hash(prev, row)
    session.info["card_log_tail"] = row.hash
    session.add(row)
    return row


@dataclass
class LogEntry:
    """A card-log row before it is written; cheaper to build than the SQLModel row on the hot path."""

    occurred_at: datetime
    recorded_at: datetime
    event: str
    source: str
    card_id: str | None = None
    loop_id: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    request_id: str | None = None
    actor: str | None = None
    detail: str = ""
    andon_id: str | None = None
    hash: str = ""


class BufferedLog:
    """Appends on the driver connection of an open write transaction: rows are chained in memory
    and written all at once (`write`). Used by scans, the relay's PUBACK marks and upstream statuses.

    The tail is read on the first append, under the caller's write lock, and every later row is
    chained to the one before it in memory; `write` inserts them in chain order (`insert_many`).
    Nothing else may append to the log between the first `append` and `write` on that connection.
    """

    def __init__(self, db: Any):
        self.db = db
        self.rows: list[tuple[object, ...]] = []
        self._tail: str | None = None

    def append(self, row: LogEntry) -> None:
        if self._tail is None:
            found = self.db.execute(_TAIL_SQL).fetchone()
            self._tail = found[0] if found else GENESIS
        occurred, recorded = to_text(row.occurred_at), to_text(row.recorded_at)
        values = (
            row.event, row.card_id, row.loop_id, row.from_state, row.to_state, row.request_id, row.actor,
            row.source, row.detail, row.andon_id,
        )  # fmt: skip
        row.hash = chain_hash(self._tail, occurred, recorded, values)
        self.rows.append((occurred, recorded, *values, row.hash))
        self._tail = row.hash

    def write(self) -> None:
        """Insert the waiting rows; the next `append` reads the tail again."""
        if self.rows:
            insert_many(self.db, self.rows)
        self.rows = []
        self._tail = None


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_broken_id: int | None

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


def verify_chain(rows: Iterable[CardLogRow]) -> ChainReport:
    """Recompute the chain over `rows` in id order; report the first row whose hash is wrong."""
    prev, count = GENESIS, 0
    for row in rows:
        count += 1
        if row.hash != row_hash(prev, row) or (row.backfilled and not backfill_believable(row.andon_id)):
            return ChainReport(count, row.id)
        prev = row.hash
    return ChainReport(count, None)
