"""The outbox's SQL: which requests are due for the broker, marking the ones it acknowledged, and
upstream's answers to them.

The outbox is `replenishment_request` itself (its `publish_state`); the relay (services/relay.py)
decides what to publish and when, and this module only reads and writes rows for it, in plain SQL on
the driver connection: loading SQLModel rows cost ~2.4 s of the relay's 6.4 s in a 3,000-signal
burst (cProfile), and the ORM mark ~1 ms a row (drain 536/s).

Reads run in one read snapshot (`Database.snapshot()`); writes inside a unit of work
(`UnitOfWork.outbox`). Every query is served by an index in rowid or `loop_seq` order
(ix_request_outbox, ix_request_publish_state*): an OR of them made SQLite sort the whole outbox on
every relay step (measured: 536 req/s). It must not decide card transitions (the relay asks the
domain) and must not publish.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from itertools import zip_longest
from typing import Any

from kanban_terminal.storage.types import from_text, to_text

OUTBOX_COLUMNS = (
    "id, loop_id, loop_seq, card_id, part_number, quantity, station, point_of_use, source, "
    "raised_at, due_at, publish_count"
)

Row = tuple[Any, ...]
"""An outbox row as read (`OUTBOX_COLUMNS`); parsed into `OutboxRow` only when it is published."""


@dataclass(frozen=True)
class OutboxRow:
    """The columns of an outbox row that its request message needs."""

    id: str
    loop_id: str
    loop_seq: int
    card_id: str
    part_number: str
    quantity: int
    station: str
    point_of_use: str
    source: str
    raised_at: datetime
    due_at: datetime
    publish_count: int

    @classmethod
    def from_sql(cls, r: Row) -> OutboxRow:
        return cls(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], from_text(r[9]), from_text(r[10]), r[11]
        )


@dataclass(frozen=True)
class Acknowledged:
    """A PUBACKed request as it is now (`OutboxWrites.acknowledged`), with its card."""

    request_id: str
    card_id: str
    loop_id: str
    status: str
    """The request's status before the mark (a first mark of a queued one makes it sent)."""
    publish_state: str
    """`pending`: acknowledged for the first time, so it gets its "request sent" row."""
    card_state: str | None
    card_open_request_id: str | None

    @property
    def moves_card(self) -> bool:
        """Its card is still queued on it: the mark moves the card to sent."""
        return self.card_state == "queued" and self.card_open_request_id == self.request_id


@dataclass(frozen=True)
class FreshRows:
    """Requests a transaction just raised, with every pending row of their loops (`fresh`)."""

    ids: frozenset[str]
    by_loop: list[list[Row]]
    """Per loop, its pending rows in `loop_seq` order (`OUTBOX_COLUMNS`)."""


@dataclass(frozen=True)
class DueRows:
    """One relay read: live loops' rows first, then stale published rows, then pending ones."""

    hot: list[Row]
    stale: list[Row]
    pending: list[Row]


@dataclass(frozen=True)
class OutboxCounts:
    queued: int
    """Requests upstream has not answered yet (pending or published)."""
    unsent: int
    """Requests the broker has not acknowledged yet (pending)."""
    oldest_at: datetime | None
    """When the oldest unanswered request was raised."""


def pending_of_loop(sql: Any, loop: str, limit: int) -> list[Row]:
    """A loop's first `limit` pending rows in `loop_seq` order (ix_request_outbox)."""
    rows: list[Row] = sql.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM replenishment_request WHERE publish_state = 'pending' "
        "AND loop_id = ? AND closed_at IS NULL ORDER BY loop_seq LIMIT ?",
        (loop, limit),
    ).fetchall()
    return rows


def read_due(
    sql: Any,
    *,
    live_since: datetime,
    stale_before: datetime,
    limit: int,
    probe: int,
    backlog: bool,
    again: Collection[str] = (),
) -> DueRows:
    """What may go out now, read in the caller's snapshot (`Database.snapshot()`).

    Args:
        sql: a driver connection inside one read transaction.
        live_since: pending rows raised since then are live: their loops go first.
        stale_before: published rows last published before then are due again.
        limit: at most this many rows per query (and per live loop).
        probe: how many of the newest pending rows are looked at to find live loops.
        backlog: read stale and pending rows too (False: only the live loops' rows).
        again: published rows that are due again whenever they were last published (the relay's
            `InflightWindow.due_again`: at most its window).
    """
    hot = hot_rows(sql, live_since, limit, probe)
    if not backlog:
        return DueRows(hot, [], [])
    ids = ",".join("?" * len(again))
    since = f"(last_published_at < ? OR id IN ({ids}))" if again else "last_published_at < ?"
    stale = sql.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM replenishment_request WHERE publish_state = 'published' "
        f"AND {since} AND closed_at IS NULL ORDER BY rowid LIMIT ?",
        (to_text(stale_before), *again, limit),
    ).fetchall()
    pending = sql.execute(
        f"SELECT {OUTBOX_COLUMNS} FROM replenishment_request WHERE publish_state = 'pending' "
        "AND closed_at IS NULL ORDER BY rowid LIMIT ?",
        (limit,),
    ).fetchall()
    return DueRows(hot, stale, pending)


def hot_rows(sql: Any, live_since: datetime, limit: int, probe: int) -> list[Row]:
    """Pending rows of the loops with a request raised since `live_since`: each loop in `loop_seq`
    order, the loops interleaved (round robin: one live loop with a deep backlog must not hold back
    another loop's live row). Live loops are found among the newest `probe` pending rows by rowid
    (an index walk from the end), never by a scan of the whole outbox.

    Why: after an outage the backlog went out oldest first and a request raised during the drain
    waited behind all of it (soak, 20,000 backlog: live p50 19.5 s, p99 31 s; issue 7 asks 1 s).
    Not simply newest first: the per-loop order is the promise (issue 3; upstream reads gaps from
    `loop_seq`), so a live request overtakes only other loops' backlog. Bounded: a card has at most
    one open request, and live traffic (a line's real rate) is far below the drain rate, so the
    backlog cannot starve.
    """
    newest = sql.execute(
        "SELECT loop_id, raised_at FROM replenishment_request WHERE publish_state = 'pending' "
        "AND closed_at IS NULL ORDER BY rowid DESC LIMIT ?",
        (probe,),
    ).fetchall()
    since = to_text(live_since)  # stored timestamps sort as text (storage/types.py)
    loops = list(dict.fromkeys(loop for loop, raised_at in newest if raised_at >= since))
    per_loop = [pending_of_loop(sql, loop, limit) for loop in loops]
    return [r for batch in zip_longest(*per_loop) for r in batch if r is not None]


def counts(sql: Any) -> OutboxCounts:
    """Count unanswered requests and find the oldest (one query on the outbox index)."""
    count, unsent, oldest = sql.execute(
        "SELECT count(*), sum(CASE WHEN publish_state = 'pending' THEN 1 ELSE 0 END), min(raised_at) "
        "FROM replenishment_request WHERE publish_state != 'done' AND closed_at IS NULL"
    ).fetchone()
    return OutboxCounts(int(count or 0), int(unsent or 0), from_text(oldest) if oldest else None)


class OutboxWrites:
    """The outbox inside a unit of work: PUBACK marks and the rows a group just raised."""

    def __init__(
        self,
        sql: Any,
        flush: Callable[[], None],
        pending: Callable[[list[str], list[str]], bool],
        forget: Callable[[list[str]], None],
    ):
        """Args:
        sql: the unit of work's driver connection.
        flush: the unit's `flush`: these statements read cards and requests that its buffered
            repositories may still hold in memory (`fresh` flushes first, `acknowledged` when
            `pending` says so).
        pending: whether the unit holds unwritten writes of these (request ids, card ids).
        forget: drop these cards from what the unit's buffered repositories read earlier.
        """
        self._sql = sql
        self._flush = flush
        self._pending = pending
        self._forget = forget

    def fresh(self, raised: list[tuple[str, str]], limit: int) -> FreshRows:
        """The pending rows of the loops of `raised` (request id, loop id), at most `limit` each
        (a loop with a deeper backlog leaves its new rows to the relay's own read)."""
        self._flush()
        loops = sorted({loop for _, loop in raised})
        by_loop = [pending_of_loop(self._sql, loop, limit) for loop in loops]
        return FreshRows(frozenset(request_id for request_id, _ in raised), by_loop)

    def acknowledged(self, request_ids: list[str]) -> list[Acknowledged]:
        """These PUBACKed requests as they are now, with their cards (`Acknowledged`), in one read.

        Why one read and no flush first (issue 19): a PUBACK mark rides in the next signal group's
        unit of work, and its two reads (first acknowledged, then the queued cards) each flushed the
        group's buffered rows first, so the group wrote its card log in two INSERTs and read the
        chain's tail twice: 18 statements a one-signal group with a mark, now 15. The buffered
        repositories are flushed only when they hold a write these rows depend on (`ScanStore.holds`:
        a card or request of theirs, or anything pending in the ORM session), and the rows read
        again; otherwise what the database says is what the unit will commit.
        """
        rows = self._acknowledged(request_ids)
        if self._pending([r.request_id for r in rows], [r.card_id for r in rows]):
            self._flush()
            rows = self._acknowledged(request_ids)
        return rows

    def _acknowledged(self, request_ids: list[str]) -> list[Acknowledged]:
        marks = ",".join("?" * len(request_ids))
        # Through the request's card_id (primary keys both ways): card.open_request_id has no
        # index, and `WHERE open_request_id IN (...)` scanned the whole card table once per
        # PUBACK batch (py-spy, 20,000-request soak drain: ~16 % of the relay thread).
        found = self._sql.execute(
            "SELECT r.id, r.card_id, r.loop_id, r.status, r.publish_state, c.state, c.open_request_id "
            f"FROM replenishment_request r LEFT JOIN card c ON c.id = r.card_id WHERE r.id IN ({marks})",
            tuple(request_ids),
        ).fetchall()
        return [Acknowledged(*row) for row in found]

    def mark_published(self, request_ids: list[str], at: datetime) -> None:
        """Mark PUBACKed rows published (queued ones sent); read them first with `acknowledged`."""
        marks = ",".join("?" * len(request_ids))
        self._sql.execute(
            "UPDATE replenishment_request SET publish_count = publish_count + 1, "
            "last_published_at = ?, publish_state = CASE publish_state WHEN 'pending' "
            "THEN 'published' ELSE publish_state END, status = CASE status WHEN 'queued' "
            f"THEN 'sent' ELSE status END WHERE id IN ({marks})",
            (to_text(at), *request_ids),
        )

    def cards_sent(self, card_ids: list[str], at: datetime) -> None:
        """Move these cards to sent (their log rows go through `UnitOfWork.log`)."""
        if card_ids:
            self._forget(card_ids)  # a card the unit read before must be read again
            marks = ",".join("?" * len(card_ids))
            self._sql.execute(
                f"UPDATE card SET state = 'sent', state_since = ? WHERE id IN ({marks})",
                (to_text(at), *card_ids),
            )

    def answered(self, request_id: str) -> tuple[str, str | None, str | None, str, str] | None:
        """Upstream answered `request_id`: it holds the request, so the relay stops re-publishing it
        (`done`). Returns the row's card id, last upstream status, closed_at, status and publish state
        as they were, or None for a request this terminal never raised (nothing is written then)."""
        self._flush()
        row: tuple[str, str | None, str | None, str, str] | None = self._sql.execute(
            "SELECT card_id, upstream_status, closed_at, status, publish_state FROM replenishment_request "
            "WHERE id = ?",
            (request_id,),
        ).fetchone()
        if row is not None:
            self._sql.execute(
                "UPDATE replenishment_request SET publish_state = 'done' WHERE id = ?", (request_id,)
            )
        return row

    def record_upstream(self, request_id: str, status: str, at: datetime, eta: datetime | None) -> None:
        """Keep upstream's newest status of the request (and its ETA, when it gave one)."""
        self._sql.execute(
            "UPDATE replenishment_request SET upstream_status = ?, upstream_at = ?, eta = coalesce(?, eta) "
            "WHERE id = ?",
            (status, to_text(at), to_text(eta) if eta else None, request_id),
        )

    def card_of_answer(self, card_id: str) -> tuple[str, str, str | None] | None:
        """The card an answer is about: its loop id, state and open request id."""
        row: tuple[str, str, str | None] | None = self._sql.execute(
            "SELECT loop_id, state, open_request_id FROM card WHERE id = ?", (card_id,)
        ).fetchone()
        return row

    def moved_by_upstream(
        self, request_id: str, card_id: str, *, status: str, state: str, at: datetime, closes: bool
    ) -> None:
        """The request takes upstream's status and its card `state`; `closes` (a rejection) closes the
        request and frees the card for its next one."""
        at_text = to_text(at)
        self._sql.execute(
            "UPDATE replenishment_request SET status = ?, closed_at = CASE WHEN ? THEN ? ELSE closed_at END "
            "WHERE id = ?",
            (status, closes, at_text, request_id),
        )
        self._sql.execute(
            "UPDATE card SET state = ?, state_since = ?, "
            "open_request_id = CASE WHEN ? THEN NULL ELSE open_request_id END WHERE id = ?",
            (state, at_text, closes, card_id),
        )
