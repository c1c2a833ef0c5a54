"""Runway reads and the warning episodes (issue 18): what the runway is computed from, in one snapshot,
and the `runway_warning` rows, written inside the caller's unit of work.

The read is indexed: bin-empty rows by `occurred_at` (ix_card_log_occurred_at) over one window,
cards by loop, open requests by the open-card index; some loops' read goes through the loop indexes
(`_OF_LOOPS`). It must not decide anything (domain/runway.py does) and never commits.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from kanban_terminal.domain.runway import Arrival
from kanban_terminal.domain.runway_window import EmptiesWindow
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.page_cache import walk_cache
from kanban_terminal.storage.tables import CardLogRow, RunwayWarningRow
from kanban_terminal.storage.types import from_text, to_text


@dataclass(frozen=True)
class RunwayFacts:
    """Everything the runways of a line are computed from, as of one snapshot, grouped by loop.

    Red cards (`reserve`, issue 18) count neither as stock nor as consumption: their bins on hand
    are counted apart, their empties and promises left out; their open requests with no andon yet
    are listed (the reserve was drawn)."""

    in_use: dict[str, int]
    """Loop id -> cards in use (bins on hand), red cards left out."""
    reserve_full: dict[str, int]
    """Loop id -> red cards in use (reserve bins on hand)."""
    empties: dict[str, list[datetime]]
    """Loop id -> its bin-empty times since the window start, oldest first."""
    arrivals: dict[str, list[Arrival]]
    """Loop id -> its open requests as promised refills (ETA, else due time)."""
    chase: dict[str, str]
    """Loop id -> the card of its oldest open request (the one to chase)."""
    drawn: list[tuple[str, str]]
    """(red card, request id) of red cards' open requests that have no andon linked yet."""
    open_warnings: dict[str, int]
    """Loop id -> the id of its open warning episode (a `RunwayWarningRow` built for each was ~30 us
    of every pass over a warned loop: SQLModel's constructor; only whether one is open is read)."""
    strays: dict[str, list[str]]
    """Loop id -> the cards of its open requests that are in another loop now (the config moved
    them with a request open): a read of that loop through its cards would miss those requests.
    The whole line's read finds them all; a read of some loops only those it reads by loop."""
    elided: dict[str, int] = field(default_factory=dict)
    """Loop id -> its window's empties left out of `empties` (`LoopSupply.elided`); none from `read_facts`."""


_IN_USE = "SELECT loop_id, count(*) FROM card WHERE retired = 0 AND state = 'in_use'{} GROUP BY loop_id"
_RED_IN_USE = (
    "SELECT loop_id FROM card WHERE retired = 0 AND state = 'in_use' "
    "AND id IN (SELECT value FROM json_each(?))"
)
# The unary `+` keeps SQLite off an index it would pick without statistics. The whole line's read
# walks the window by ix_card_log_occurred_at (SQLite chose ix_card_log_event: every bin-empty row
# ever logged, a read that grows with the log's age). Some loops' read walks their log rows by
# ix_card_log_loop_id from the window's first id on (`first_log_id`, 0.3 ms to find). Measured with
# sqlite3 on a 200-loop line's file, 63,000 bin-empty rows of which 3,000 in the window: the whole
# line 2.2 ms by time, 29 ms through the event index; one loop 0.02 ms (0.23 ms from its first row
# ever), 30 loops 0.46 ms (10.4 ms).
_EMPTIES = (
    "SELECT loop_id, card_id, occurred_at FROM card_log WHERE +event = 'bin_empty' AND occurred_at >= ? "
    "ORDER BY occurred_at"
)
_EMPTIES_OF = (
    "SELECT loop_id, card_id, occurred_at FROM card_log WHERE +event = 'bin_empty' AND +occurred_at >= ?{} "
    "AND id >= ? ORDER BY occurred_at"
)
# The bin-empty rows logged since a window's last read (`EmptiesWindow`), by rowid; `_LAST_ID` first,
# in the same snapshot, so what a later read takes starts right after.
_NEW_EMPTIES = (
    "SELECT loop_id, card_id, occurred_at FROM card_log WHERE id > ? AND id <= ? AND +event = 'bin_empty'"
)
_LAST_ID = "SELECT coalesce(max(id), 0) FROM card_log"
_FIRST_ID = (
    "SELECT coalesce((SELECT min(id) FROM card_log INDEXED BY ix_card_log_occurred_at "
    "WHERE occurred_at >= ?), (SELECT coalesce(max(id), 0) + 1 FROM card_log))"
)
# From a bound found before for an earlier `since` on: the rowid walked up to the window's first row,
# i.e. over the rows that left the window since (the log is append-only and mostly in time order).
# `_FIRST_ID` walks every window row's index entry instead (min(id) is not in the index's order):
# the whole window at each full pass, every `check_seconds`, growing with the line's rate (an
# 8-hour window at 5 signals/s holds ~430,000 log rows); 1.0 ms at 3,000 (bench/runway_job.py).
# `+occurred_at` keeps SQLite on the rowid.
_FIRST_ID_FROM = (
    "SELECT coalesce((SELECT id FROM card_log WHERE id >= ? AND +occurred_at >= ? ORDER BY id LIMIT 1), "
    "(SELECT coalesce(max(id), 0) + 1 FROM card_log))"
)
# The whole line's open requests, through ux_request_open_card (open rows only), each with the loop
# its card is in now (`c.loop_id`, a key lookup: +1.5 ms on 3,000 open requests, 3.5 -> 5.0 ms with
# sqlite3): where that is not the request's loop (a card the config moved with a request open, a
# retired card), the request is a stray, which a read by the loop's cards would miss (`strays`).
# CROSS JOIN keeps the card lookup after the request scan.
_PROMISES = (
    "SELECT r.id, r.loop_id, r.card_id, r.quantity, r.raised_at, r.due_at, r.eta, a.id, c.loop_id "
    "FROM replenishment_request r LEFT JOIN andon a ON a.request_id = r.id "
    "CROSS JOIN card c ON c.id = r.card_id WHERE r.closed_at IS NULL{}"
)
# Some loops' open requests through their cards: ix_card_loop_id, then each card's open request by
# ux_request_open_card (a partial index of open requests only, no new index, no migration), so
# closed requests are never walked and the read does not grow with the file's age. Measured with
# sqlite3 on a 200-loop line's file with 3,000 open requests (load ~2): with 200,000 closed, one
# loop 0.05 ms and 30 loops 1.1 ms, against 1.1 ms and 35 ms through ix_request_loop_raised (each
# loop's whole request history); ux_request_open_card scanned with the loop tested per row, 0.75 and
# 1.3 ms (it walks every open request). `+r.loop_id` keeps a card's request raised for another loop
# (a stray) with that loop, as the whole line's read groups it; the strays of these loops are read
# by loop (`_PROMISES_OF_LOOPS`) instead, exact at the old cost.
_PROMISES_OF_CARDS = (
    "SELECT r.id, r.loop_id, r.card_id, r.quantity, r.raised_at, r.due_at, r.eta, a.id, c.loop_id "
    "FROM card c JOIN replenishment_request r ON r.card_id = c.id AND r.closed_at IS NULL "
    "LEFT JOIN andon a ON a.request_id = r.id "
    "WHERE c.loop_id IN (SELECT value FROM json_each(?)) AND +r.loop_id IN (SELECT value FROM json_each(?))"
)
_PROMISES_OF_LOOPS = _PROMISES.format(" AND r.loop_id IN (SELECT value FROM json_each(?))")
_STRAYS = (
    "SELECT DISTINCT r.loop_id FROM replenishment_request r INDEXED BY ux_request_open_card "
    "CROSS JOIN card c ON c.id = r.card_id WHERE r.closed_at IS NULL AND c.loop_id <> r.loop_id"
)
_WARNINGS = "SELECT loop_id, id FROM runway_warning WHERE cleared_at IS NULL{}"
_OF_LOOPS = " AND {}loop_id IN (SELECT value FROM json_each(?))"
"""Narrows each read to some loops (one bound parameter, a JSON list, whatever their number). The
plans (EXPLAIN QUERY PLAN, checked in tests/integration/test_runway_loops.py): cards through
ix_card_loop_id, bin-empty rows through ix_card_log_loop_id from the window's first id on, open
requests through the loops' cards and ux_request_open_card (`_PROMISES_OF_CARDS`): none walks rows
older than the window or closed, so a pass over some loops costs what they hold, not the file's age.
A partial index of open requests by loop would do the last too, at a b-tree page written by each
request's raise and close (issue 19 counts pages a commit): not added (docs/BENCHMARKS.md,
runwayhist)."""


def first_log_id(db: Database, since: datetime, after: int = 0) -> int:
    """A card-log id below which no row occurred at or after `since`: the lowest id of the window
    (its index entries only, no row read), else the next id. The card log is append-only, so it
    stays such a bound for any later `since` and every row written after.

    `after`: such a bound found for an earlier `since` (0: none): the rows from it on are walked in
    id order to the window's first (`_FIRST_ID_FROM`), the same id found in what left the window."""
    with db.snapshot() as sql:
        if after > 0:
            return int(sql.execute(_FIRST_ID_FROM, (after, to_text(since))).fetchone()[0])
        return int(sql.execute(_FIRST_ID, (to_text(since),)).fetchone()[0])


def read_facts(
    db: Database,
    since: datetime,
    reserve: Collection[str] = (),
    loops: Collection[str] | None = None,
    log_from: int = 0,
    strays: Collection[str] | None = None,
    window: EmptiesWindow | None = None,
) -> RunwayFacts:
    """One snapshot, in plain SQL, grouped by loop as it is read; of `loops` only when given (the
    runway job's pass after a card change, which assesses only the loops whose cards changed).
    `log_from` is a `first_log_id` for a `since` no later than this one: the loops' bin-empty rows
    are read from that id on (without it, from the loops' first row ever). `strays` are the loops
    known to have strays (a whole line's read's `strays`, or `stray_loops`): the open requests of
    the other `loops` are read through their cards, of these by loop; None (not known): every loop's
    by loop, which walks its closed requests too.
    `window`: kept between reads (its `since` moved to this one's by the caller): brought up to this
    snapshot, and no bin-empty row read otherwise (`empties` empty: the caller takes them from it).

    Through the ORM a 20,000-card line with every card's request open took 2.0 s a read (20,000
    `RequestRow` objects built); the screen asks every 2 s. Read into lists of rows first and
    grouped after, that snapshot held 19.3 MB at once, most of `serve`'s growth over a
    20,000-signal burst (issue 19); grouped as read, only the times and quantities stay.
    """
    in_use: dict[str, int] = {}
    reserve_full: dict[str, int] = {}
    empties: dict[str, list[datetime]] = {}
    arrivals: dict[str, list[Arrival]] = {}
    oldest: dict[str, tuple[str, str]] = {}
    drawn: list[tuple[str, str]] = []
    of: tuple[str, ...] = () if loops is None else (json.dumps(sorted(loops)),)

    def only(table: str = "") -> str:
        return "" if loops is None else _OF_LOOPS.format(table)

    with db.snapshot() as sql:
        # Counted by SQLite, red cards taken back out: a row per card through Python was 20,000 rows a
        # tick on a 20,000-card line (~10 ms of a 27 ms read, every 2 s while cards change).
        in_use.update(sql.execute(_IN_USE.format(only()), of))
        # The red cards as one JSON list, as `_OF_LOOPS` does: one bound parameter whatever their number.
        red = sql.execute(_RED_IN_USE, (json.dumps(sorted(reserve)),)) if reserve else ()
        for (lp,) in red:
            if lp in in_use:  # a red card of a loop not read (in_use counts it when read)
                in_use[lp] -= 1
                reserve_full[lp] = reserve_full.get(lp, 0) + 1
        in_use = {lp: n for lp, n in in_use.items() if n > 0}
        if window is not None:
            _bring_up(sql, window)
            rows: Any = ()
        elif loops is None:
            rows = sql.execute(_EMPTIES, (to_text(since),))
        else:
            rows = sql.execute(_EMPTIES_OF.format(only()), (to_text(since), *of, log_from))
        for lp, card, at in rows:
            if card not in reserve:
                empties.setdefault(lp or "", []).append(from_text(at))
        found: dict[str, list[str]] = {}
        for rid, lp, card, qty, raised, due, eta, andon, now_in in _promises(sql, loops, strays):
            if now_in != lp:
                found.setdefault(lp, []).append(card)
            if card in reserve:
                if andon is None:
                    drawn.append((card, rid))
                continue
            arrivals.setdefault(lp, []).append(Arrival(from_text(eta or due), qty))
            # Of equal times the lowest card id: the whole line's read comes in card order, some loops' in
            # raise order, and both must chase the same card. Compared as stored: fixed-width UTC text
            # sorts as the instants do (storage/types.py), and only the card is kept.
            if lp not in oldest or (raised, card) < oldest[lp]:
                oldest[lp] = (raised, card)
        warnings: dict[str, int] = dict(sql.execute(_WARNINGS.format(only()), of))
    chase = {lp: card for lp, (_, card) in oldest.items()}
    return RunwayFacts(in_use, reserve_full, empties, arrivals, chase, drawn, warnings, found)


def _bring_up(sql: sqlite3.Connection, window: EmptiesWindow) -> None:
    """The window's rows logged since its last read (all in it when none was read yet); every row
    is fetched before the window changes, so a failed read leaves it as it was."""
    last = int(sql.execute(_LAST_ID).fetchone()[0])
    if window.loaded:
        rows = sql.execute(_NEW_EMPTIES, (window.seen_id, last)).fetchall()
    else:
        # The whole window's log rows, each page once (2.0 MB of cache kept otherwise: page_cache.py).
        with walk_cache(sql):
            rows = sql.execute(_EMPTIES, (to_text(window.since),)).fetchall()
    for lp, card, at in rows:
        window.add(lp or "", card, from_text(at))
    window.seen_id = last


def _promises(
    sql: sqlite3.Connection, loops: Collection[str] | None, strays: Collection[str] | None
) -> Iterator[tuple[Any, ...]]:
    """The open requests of `loops` (all when None): of loops in `strays` (all when None) by loop,
    of the others through their cards."""
    if loops is None:
        yield from sql.execute(_PROMISES.format(""))
        return
    by_loop = sorted(loops) if strays is None else sorted(set(loops) & set(strays))
    by_card = sorted(set(loops).difference(by_loop))
    if by_loop:
        yield from sql.execute(_PROMISES_OF_LOOPS, (json.dumps(by_loop),))
    if by_card:
        yield from sql.execute(_PROMISES_OF_CARDS, (json.dumps(by_card),) * 2)


def stray_loops(db: Database) -> set[str]:
    """The loops with strays (`RunwayFacts.strays`) now: every open request's card looked up (1.7 ms
    for 3,000 open requests, sqlite3), for a pass over some loops that no whole line's read came before."""
    with db.snapshot() as sql:
        return {lp for (lp,) in sql.execute(_STRAYS)}


def open_warnings(session: Session) -> list[RunwayWarningRow]:
    stmt = select(RunwayWarningRow).where(col(RunwayWarningRow.cleared_at).is_(None))
    return list(session.exec(stmt).all())


def open_warning(session: Session, loop_id: str) -> RunwayWarningRow | None:
    return session.exec(
        select(RunwayWarningRow).where(
            RunwayWarningRow.loop_id == loop_id, col(RunwayWarningRow.cleared_at).is_(None)
        )
    ).first()


class WarningAlreadyOpen(Exception):
    """The loop has an open warning episode already (another process or tick opened it)."""


def add_warning(session: Session, row: RunwayWarningRow) -> None:
    """Open an episode.

    Raises:
        WarningAlreadyOpen: the loop has one open; the caller's unit of work must roll back.
    """
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise WarningAlreadyOpen(row.loop_id) from exc


def episodes(db: Database, since: datetime | None = None) -> list[RunwayWarningRow]:
    """Warning episodes raised since `since` (all when None), oldest first (reports, tests)."""
    with db.reading() as session:
        stmt = select(RunwayWarningRow).order_by(col(RunwayWarningRow.raised_at))
        if since is not None:
            stmt = stmt.where(col(RunwayWarningRow.raised_at) >= since)
        return list(session.exec(stmt).all())


def reserve_draws(db: Database, since: datetime | None = None) -> dict[str, int]:
    """Loop id -> how many times its reserve was drawn (`reserve_drawn` log rows)."""
    with db.reading() as session:
        stmt = select(CardLogRow.loop_id).where(CardLogRow.event == "reserve_drawn")
        if since is not None:
            stmt = stmt.where(col(CardLogRow.occurred_at) >= since)
        out: dict[str, int] = {}
        for loop_id in session.exec(stmt):
            out[loop_id or ""] = out.get(loop_id or "", 0) + 1
        return out
