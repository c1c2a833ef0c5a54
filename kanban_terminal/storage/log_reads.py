"""Reading the card log a page at a time: filters, keyset paging, a streaming cursor, per-card cycles.

A year of history is about a million rows, so nothing here loads the log: pages are keyset queries on
the id (`id < cursor ORDER BY id DESC LIMIT n`) that an index on the filtered column serves directly
(migration 0004), and an export streams rows from one cursor. Part and station are not columns of
the log: they are resolved through the `loop` table (which mirrors the configuration), and for andon
rows by their own `station` column (migration 0006).

The SQL of services/log_query.py (which keeps the CSV export and the screen's query language). It
only reads; it never writes the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, text

from kanban_terminal.storage.card_log import HASHED_FIELDS, ChainCheck, ChainReport
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.types import to_text

# Stored timestamps are fixed-format ISO text with a Z (storage/types.py); fromisoformat reads them
# 30x faster than the strptime in types.from_text (0.9 vs 30 us), which counts over a year of rows.
parse_stored = datetime.fromisoformat

COLUMNS = (
    "id", "occurred_at", "recorded_at", "event", "card_id", "loop_id", "from_state", "to_state",
    "request_id", "actor", "source", "detail", "andon_id", "andon_kind", "andon_reason", "station",
    "downtime_s", "elapsed_s", "backfilled", "hash",
)  # fmt: skip
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM card_log"


@dataclass(frozen=True)
class LogFilter:
    """What the person is looking for; every field left None matches everything."""

    card: str | None = None
    part: str | None = None
    loop: str | None = None
    station: str | None = None
    events: tuple[str, ...] = ()
    """Event names; several are OR-ed. `andon` matches every andon_* event."""
    source: str | None = None
    """Input door; a value ending in `:` matches a family (`serial:` for every serial port)."""
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    """Free text, searched in card, loop, request id, actor and detail."""

    def where(self) -> tuple[str, dict[str, Any], list[str]]:
        """SQL conditions, their parameters and the names of expanding (list) parameters."""
        conds: list[str] = []
        params: dict[str, Any] = {}
        expanding: list[str] = []
        if self.card:
            conds.append("card_id = :card")
            params["card"] = self.card.strip().upper()
        if self.loop:
            conds.append("loop_id = :loop")
            params["loop"] = self.loop.strip()
        if self.part:
            conds.append("loop_id IN (SELECT id FROM loop WHERE part_number = :part)")
            params["part"] = self.part.strip()
        if self.station:
            # Every row of an andon carries its station (migration 0006), so its acknowledgement and
            # resolution match too; card rows match through their loop. `+loop_id` keeps SQLite
            # walking the log newest-first and stopping at a page: with the index it gathered a
            # quarter of a 1.2M-row log for the OR and sorted it (370 ms vs 1 ms).
            conds.append("(station = :station OR +loop_id IN (SELECT id FROM loop WHERE station = :station))")
            params["station"] = self.station.strip()
        if self.events:
            names = [e.strip() for e in self.events if e.strip()]
            exact = [e for e in names if e != "andon"]
            parts = []
            if exact:
                parts.append("event IN :events")
                params["events"] = exact
                expanding.append("events")
            if "andon" in names:
                parts.append("andon_id IS NOT NULL")
            if parts:
                conds.append("(" + " OR ".join(parts) + ")")
        if self.source:
            if self.source.endswith(":"):
                conds.append("source LIKE :source ESCAPE '\\'")
                params["source"] = _like_escape(self.source) + "%"
            else:
                conds.append("source = :source")
                params["source"] = self.source
        if self.actor:
            conds.append("actor = :actor")
            params["actor"] = self.actor.strip()
        if self.since:
            conds.append("occurred_at >= :since")
            params["since"] = to_text(self.since)
        if self.until:
            conds.append("occurred_at < :until")
            params["until"] = to_text(self.until)
        if self.text and self.text.strip():
            conds.append(
                "(detail LIKE :q ESCAPE '\\' OR card_id LIKE :q ESCAPE '\\' OR loop_id LIKE :q ESCAPE '\\'"
                " OR request_id LIKE :q ESCAPE '\\' OR actor LIKE :q ESCAPE '\\')"
            )
            params["q"] = f"%{_like_escape(self.text.strip())}%"
        return " AND ".join(conds), params, expanding


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class LogEntry:
    """One card-log row as read back."""

    id: int
    occurred_at: datetime
    recorded_at: datetime
    event: str
    card_id: str | None
    loop_id: str | None
    from_state: str | None
    to_state: str | None
    request_id: str | None
    actor: str | None
    source: str
    detail: str
    andon_id: str | None
    andon_kind: str | None
    andon_reason: str | None
    station: str | None
    downtime_s: float | None
    elapsed_s: float | None
    backfilled: bool | None
    hash: str

    @classmethod
    def from_db(cls, row: Any) -> LogEntry:
        values = list(row)
        values[1], values[2] = parse_stored(values[1]), parse_stored(values[2])
        return cls(*values)


@dataclass(frozen=True)
class LogPage:
    """One screenful, newest first, and whether there is more on either side."""

    entries: tuple[LogEntry, ...]
    has_older: bool
    has_newer: bool

    @property
    def oldest_id(self) -> int | None:
        return self.entries[-1].id if self.entries else None

    @property
    def newest_id(self) -> int | None:
        return self.entries[0].id if self.entries else None


def _statement(flt: LogFilter, extra: str, order: str, limit: int | None) -> tuple[Any, dict[str, Any]]:
    where, params, expanding = flt.where()
    conds = " AND ".join(c for c in (where, extra) if c)
    sql = _SELECT + (f" WHERE {conds}" if conds else "") + f" ORDER BY id {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    stmt = text(sql)
    if expanding:
        stmt = stmt.bindparams(*(bindparam(name, expanding=True, type_=String()) for name in expanding))
    return stmt, params


def read_page(
    db: Database, flt: LogFilter, *, before: int | None = None, after: int | None = None, limit: int = 100
) -> LogPage:
    """One page of matching rows, newest first.

    Args:
        db: the terminal's database.
        flt: the filter.
        before: return rows older than this id (the next page down); None for the newest.
        after: return rows newer than this id (the page above); wins over `before`.
        limit: rows per page.

    Returns:
        The page; `has_older` / `has_newer` say whether paging on finds more.
    """
    with db.reading() as session:
        conn = session.connection()
        if after is not None:
            stmt, params = _statement(flt, "id > :cursor", "ASC", limit + 1)
            rows = conn.execute(stmt, {**params, "cursor": after}).all()
            newer = len(rows) > limit
            entries = tuple(LogEntry.from_db(r) for r in reversed(rows[:limit]))
            return LogPage(entries, has_older=True, has_newer=newer)
        extra = "id < :cursor" if before is not None else ""
        stmt, params = _statement(flt, extra, "DESC", limit + 1)
        rows = conn.execute(stmt, {**params, "cursor": before}).all()
        entries = tuple(LogEntry.from_db(r) for r in rows[:limit])
        return LogPage(entries, has_older=len(rows) > limit, has_newer=before is not None)


def iter_entries(db: Database, flt: LogFilter) -> Iterator[tuple[Any, ...]]:
    """Every matching row as stored (timestamps as text), newest first, streamed from one cursor."""
    with db.reading() as session:
        stmt, params = _statement(flt, "", "DESC", None)
        result = session.connection().execution_options(stream_results=True).execute(stmt, params)
        for row in result:
            yield tuple(row)


@dataclass(frozen=True)
class CardCycle:
    """One trip of a card: bin empty (request raised) to full bin back, with its lead time."""

    request_id: str
    raised_at: datetime
    due_at: datetime
    closed_at: datetime | None
    status: str
    lead_time_s: float | None

    @property
    def on_time(self) -> bool | None:
        if self.closed_at is None or self.status != "delivered":
            return None
        return self.closed_at <= self.due_at


def card_cycles(db: Database, card_id: str, limit: int = 200) -> list[CardCycle]:
    """The card's newest `limit` cycles, newest first."""
    with db.reading() as session:
        rows = (
            session.connection()
            .execute(
                text(
                    "SELECT id, raised_at, due_at, closed_at, status, lead_time_s FROM replenishment_request "
                    "WHERE card_id = :card ORDER BY raised_at DESC LIMIT :limit"
                ),
                {"card": card_id.strip().upper(), "limit": limit},
            )
            .all()
        )
    return [
        CardCycle(
            r[0], parse_stored(r[1]), parse_stored(r[2]), parse_stored(r[3]) if r[3] else None, r[4], r[5]
        )
        for r in rows
    ]


def verify_chain_of(db: Database) -> ChainReport:
    """Recompute the log's hash chain in id order, streaming the stored text straight into
    `card_log.chain_hash` (no ORM rows: a year is a million rows); `first_broken_id` names the first
    row that does not follow from the rows before it. Keyed rows are checked with `db.log_key`."""
    cols = ", ".join(("id", "occurred_at", "recorded_at", *HASHED_FIELDS, "backfilled", "hash"))
    andon_id = 3 + HASHED_FIELDS.index("andon_id")
    check = ChainCheck(db.log_key)
    with db.reading() as session:
        result = (
            session.connection()
            .execution_options(stream_results=True)
            .execute(text(f"SELECT {cols} FROM card_log ORDER BY id"))
        )
        for row in result:
            if not check.feed(row[0], row[-1], row[1], row[2], row[3:-2], backfilled=bool(row[-2]),
                              andon_id=row[andon_id]):  # fmt: skip
                break
    return check.report()


def last_recorded_at(db: Database) -> datetime | None:
    """When the newest card-log row was written (by id: record order), None for an empty log."""
    with db.snapshot() as raw:
        row = raw.execute("SELECT recorded_at FROM card_log ORDER BY id DESC LIMIT 1").fetchone()
    return parse_stored(row[0]) if row else None
