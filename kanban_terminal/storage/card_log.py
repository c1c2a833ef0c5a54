"""Appending to the card log, the only way: every row chained by hash to the one before it.

The database already refuses UPDATE and DELETE on `card_log`; the chain makes an edit made behind
its back (a hand-edited file, a dropped trigger) detectable: `verify_chain` recomputes every hash and
names the first row that does not match. Writers hold the write lock (BEGIN IMMEDIATE), so the tail
read here cannot race another writer.

What the hash covers: the previous hash, both timestamps and the `ORIGINAL_FIELDS` (since 0001),
then, when a row carries any of the structured andon `FACTS` (since 0006), a `v2` marker and the
facts, then, when it carries an `elapsed_s` (since 0012), a `v3` marker and that figure. A row without
facts hashes exactly as before 0006, a row without `elapsed_s` exactly as before 0012, so every writer
that has none (scans, the relay, the catalog sync) and every old row stay valid. The facts migration
0006 derived for andon rows written before it are not covered (their hash predates them): those rows
say `backfilled`, and a backfilled row is only believed where a backfill could have happened (an
andon row). `elapsed_s` is never backfilled: when set it is covered, on a backfilled row too.

Keyed rows (issue 17): once the terminal has its log key (storage/log_key.py), each new row's hash
is `k1:` + HMAC-SHA256 under the key over the same text, so nobody without the key can recompute
the chain. No migration was needed, on purpose: the marker is the stored hash's own prefix, and the
boundary (every row after `keyed_after_id` must be keyed) lives in the key file, where someone with
only the database cannot move it. An old database keeps every row as it was and is keyed from its
tail on at the first start with this version. A downgrade still runs, but its `verify-log` calls the
first keyed row broken, and the plain rows it appends read as rewritten here later: do not
downgrade a keyed terminal. `ChainCheck` holds the rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from kanban_terminal.storage import batches
from kanban_terminal.storage.log_key import KEYED_PREFIX, LogKey
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.storage.types import to_text

GENESIS = "0" * 64
ORIGINAL_FIELDS = (
    "event", "card_id", "loop_id", "from_state", "to_state", "request_id", "actor", "source", "detail",
    "andon_id",
)  # fmt: skip
FACTS = ("andon_kind", "andon_reason", "station", "downtime_s")
"""Structured andon facts (migration 0006): written by the use case, read by metrics."""
ELAPSED = ("elapsed_s",)
"""An andon's seconds since its raise on its acknowledge, resolve and cancel rows (migration 0012)."""
FIELDS = ORIGINAL_FIELDS + FACTS + ELAPSED
_N_ORIGINAL = len(ORIGINAL_FIELDS)
_N_FACTS = len(FACTS)
_TAIL_SQL = "SELECT hash FROM card_log ORDER BY id DESC LIMIT 1"


def row_hash(prev: str, row: Any, key: LogKey | None = None) -> str:
    """SHA-256 (or, with `key`, HMAC-SHA256) over the previous hash and every field of the row (not
    its id)."""
    values = [getattr(row, f, None) for f in FIELDS]
    occurred, recorded = to_text(row.occurred_at), to_text(row.recorded_at)
    backfilled = bool(getattr(row, "backfilled", None))
    return chain_hash(prev, occurred, recorded, values, backfilled=backfilled, key=key)


def _fact_text(value: object) -> str:
    # A number is hashed as a float's repr: SQLite's REAL column gives 28.0 back for an int 28.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return "" if value is None else str(value)


def chain_hash(
    prev: str,
    occurred_at: str,
    recorded_at: str,
    values: Sequence[object],
    *,
    backfilled: bool = False,
    key: LogKey | None = None,
) -> str:
    """The chain hash from stored text: lets bulk writers and `verify-log` skip building ORM rows.

    Args:
        prev: the previous row's hash (`GENESIS` for the first row).
        occurred_at: stored text of the timestamp (`types.to_text`); likewise `recorded_at`.
        recorded_at: see `occurred_at`.
        values: the `ORIGINAL_FIELDS` in order, optionally followed by the `FACTS` in order, and
            then optionally by `ELAPSED`.
        backfilled: the row's facts were derived by migration 0006 after it was written; they are
            left out, as they were when its hash was made (`elapsed_s` is never backfilled: when set,
            it is covered).
        key: the terminal's log key (storage/log_key.py) for a row written after the key existed;
            None for the plain SHA-256 of rows written before it.

    Returns:
        The hash the row must carry: hex SHA-256, or `k1:` + hex HMAC-SHA256 with `key`.
    """
    # Written for speed: verify-log runs this a million times a year of log, and scans and the
    # relay once a row. Slices and `count` stay in C (1.3 vs 3.1 us a row with `any()` over a
    # generator; the pre-0006 function took 1.25 us).
    facts: Sequence[object] = ()
    elapsed: object = None
    if len(values) > _N_ORIGINAL:
        facts, values = values[_N_ORIGINAL:], values[:_N_ORIGINAL]
        if len(facts) > _N_FACTS:
            elapsed, facts = facts[_N_FACTS], facts[:_N_FACTS]
        if backfilled or facts.count(None) == len(facts):
            facts = ()
    parts = [prev, occurred_at, recorded_at]
    parts += ["" if v is None else str(v) for v in values]
    if facts:
        parts.append("v2")
        parts += [_fact_text(v) for v in facts]
    if elapsed is not None:
        parts += ("v3", _fact_text(elapsed))
    message = "\x1f".join(parts).encode()
    return key.mac(message) if key is not None else hashlib.sha256(message).hexdigest()


def backfill_believable(andon_id: object) -> bool:
    """Migration 0006 backfilled andon rows only: a `backfilled` mark anywhere else is an edit."""
    return andon_id is not None


HASHED_FIELDS = FIELDS
_COLUMNS = {
    width: "occurred_at, recorded_at, " + ", ".join(fields) + ", hash"
    for width, fields in (
        (_N_ORIGINAL + 3, ORIGINAL_FIELDS),
        (_N_ORIGINAL + _N_FACTS + 3, ORIGINAL_FIELDS + FACTS),
        (len(FIELDS) + 3, FIELDS),
    )  # fmt: skip
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


SESSION_KEY = "card_log_key"
"""`session.info` entry holding the log key of the session's database (set by the unit of work)."""


def append(session: Session, row: CardLogRow) -> CardLogRow:
    """Add `row` to the log inside the caller's ORM transaction, chained to the current tail."""
    prev = session.info.get("card_log_tail")
    if prev is None:
        prev = session.connection().exec_driver_sql(_TAIL_SQL).scalar() or GENESIS
    row.hash = row_hash(prev, row, session.info.get(SESSION_KEY))
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

    def __init__(self, db: Any, key: LogKey | None = None):
        self.db = db
        self.key = key
        self.rows: list[tuple[object, ...]] = []
        self._tail: str | None = None
        self.moved = False
        """Whether a row was appended through this log (the unit of work tells the log's watchers)."""

    def append(self, row: LogEntry) -> None:
        if self._tail is None:
            found = self.db.execute(_TAIL_SQL).fetchone()
            self._tail = found[0] if found else GENESIS
        occurred, recorded = to_text(row.occurred_at), to_text(row.recorded_at)
        values = (
            row.event, row.card_id, row.loop_id, row.from_state, row.to_state, row.request_id, row.actor,
            row.source, row.detail, row.andon_id,
        )  # fmt: skip
        row.hash = chain_hash(self._tail, occurred, recorded, values, key=self.key)
        self.rows.append((occurred, recorded, *values, row.hash))
        self._tail = row.hash
        self.moved = True

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
    reason: str = ""
    """Why `first_broken_id` is bad, in words for maintenance; empty when the chain holds."""
    head: tuple[int, str] | None = None
    """The last row checked: (id, stored hash), the chain head an anchor records."""

    @property
    def ok(self) -> bool:
        return self.first_broken_id is None


class ChainCheck:
    """The chain's rules, fed one row at a time in id order (shared by every verifier).

    A row is plain (bare hex SHA-256) or keyed (`k1:` + HMAC-SHA256, storage/log_key.py). With the
    terminal's key: rows up to `keyed_after_id` must be plain and every later row keyed and right;
    a plain row after the boundary is a row rewritten without the key. Without a key a keyed row
    cannot be checked and is reported as such (not as intact).
    """

    def __init__(self, key: LogKey | None):
        self.key = key
        self.prev = GENESIS
        self.rows = 0
        self.last_id = 0
        self.broken: ChainReport | None = None

    def feed(
        self,
        row_id: int,
        stored: str,
        occurred_at: str,
        recorded_at: str,
        values: Sequence[object],
        *,
        backfilled: bool,
        andon_id: object,
    ) -> bool:
        """Check one row; False (and `broken` set) at the first bad one."""
        self.rows += 1
        keyed = stored.startswith(KEYED_PREFIX)
        key = self.key
        reason = ""
        if key is None and keyed:
            reason = "the row is keyed (HMAC) and no log key was given to check it"
        elif key is not None and keyed != (row_id > key.keyed_after_id):
            reason = (
                f"the row is plain SHA-256 but was written after the log key was made (after row "
                f"{key.keyed_after_id}): it was rewritten without the key"
                if not keyed
                else f"the row is keyed but lies before the key's first row {key.keyed_after_id + 1}: "
                "rows were removed"
            )
        elif chain_hash(self.prev, occurred_at, recorded_at, values, backfilled=backfilled,
                        key=key if keyed else None) != stored:  # fmt: skip
            reason = (
                "its hash does not follow from the rows before it: this row or an earlier one was changed, "
                "or rows were removed"
            )
        elif backfilled and not backfill_believable(andon_id):
            reason = "a 'backfilled' mark on a row migration 0006 never backfilled"
        if reason:
            self.broken = ChainReport(self.rows, row_id, reason, (self.last_id, self.prev))
            return False
        self.prev, self.last_id = stored, row_id
        return True

    def report(self) -> ChainReport:
        if self.broken is not None:
            return self.broken
        key = self.key
        if key is not None and self.last_id < key.keyed_after_id:
            return ChainReport(
                self.rows, self.last_id + 1,
                f"the log ends at row {self.last_id}, but it had {key.keyed_after_id} rows when the log key "
                f"was made ({key.created_at}): rows from {self.last_id + 1} on were cut",
                (self.last_id, self.prev),
            )  # fmt: skip
        return ChainReport(self.rows, None, "", (self.last_id, self.prev) if self.rows else None)


def verify_chain(rows: Iterable[CardLogRow], key: LogKey | None = None) -> ChainReport:
    """Recompute the chain over `rows` in id order; report the first row whose hash is wrong."""
    check = ChainCheck(key)
    for row in rows:
        values = [getattr(row, f, None) for f in FIELDS]
        occurred, recorded = to_text(row.occurred_at), to_text(row.recorded_at)
        assert row.id is not None
        if not check.feed(row.id, row.hash, occurred, recorded, values, backfilled=bool(row.backfilled),
                          andon_id=row.andon_id):  # fmt: skip
            break
    return check.report()
