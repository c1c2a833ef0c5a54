"""The SQL of supplier trouble, re-routes and delivery-in-full records (migration 0010).

`SupplyRows` writes inside a unit of work (`UnitOfWork.supply`): upstream's warnings on a request,
the cancels a re-route leaves for upstream (`request_cancel`, an outbox of its own), a loop's current
route (`loop_route`), and what a delivery scan recorded short or damaged. The read functions take a
driver connection in one read snapshot (`Database.snapshot()`). Plain SQL on the driver connection,
as the scan path and the outbox (storage/outbox.py). It must not decide anything and must not commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kanban_terminal.storage.types import from_text, to_text


def _at(value: str | None) -> datetime | None:
    return from_text(value) if value else None


@dataclass(frozen=True)
class Promise:
    """An open request as an arrival the line can count on: when, how many, and any warning."""

    request_id: str
    loop_id: str
    card_id: str
    source: str
    quantity: int
    due_at: datetime
    eta: datetime | None
    """Upstream's expected arrival (shipped, or the new ETA of a `delayed`), else None."""
    trouble: str | None
    """`delayed` or `at_risk` when upstream warned about it."""
    trouble_reason: str | None
    trouble_at: datetime | None

    @property
    def expected_at(self) -> datetime:
        """When the parts are expected at the line: upstream's ETA when it gave one, else the due time."""
        return self.eta or self.due_at


_PROMISE_SQL = (
    "SELECT id, loop_id, card_id, source, quantity, due_at, eta, trouble, trouble_reason, trouble_at "
    "FROM replenishment_request WHERE closed_at IS NULL"
)


def promises(sql: Any, loop_id: str | None = None) -> list[Promise]:
    """Open requests (of one loop, or all) oldest first, in the caller's read snapshot."""
    where, params = ("", ()) if loop_id is None else (" AND loop_id = ?", (loop_id,))
    rows = sql.execute(f"{_PROMISE_SQL}{where} ORDER BY raised_at", params).fetchall()
    return [
        Promise(r[0], r[1], r[2], r[3], r[4], from_text(r[5]), _at(r[6]), r[7], r[8], _at(r[9])) for r in rows
    ]


def routes(sql: Any) -> dict[str, str]:
    """Loop id -> the source a team lead re-routed it to (loops on their configured source are absent)."""
    return {loop: source for loop, source in sql.execute("SELECT loop_id, source FROM loop_route")}


@dataclass(frozen=True)
class OpenOfLoop:
    """An open request of a loop, with its card, as a re-route needs it."""

    request_id: str
    card_id: str
    card_state: str
    source: str
    quantity: int
    raised_at: datetime
    trouble_at: datetime | None
    shortfall_of: str | None = None
    """The short delivery it makes up for, if it is a shortfall request (its replacement is one too)."""


@dataclass(frozen=True)
class Delivered:
    """A card's last delivered request, as a delivery-in-full record needs it."""

    request_id: str
    loop_id: str
    quantity: int
    closed_at: datetime
    recorded: bool
    """Short or damaged was already recorded for it."""


class SupplyRows:
    """Supplier trouble, re-routes and delivery records inside one unit of work."""

    def __init__(self, sql: Any, flush: Callable[[], None]):
        """Args:
        sql: the unit of work's driver connection.
        flush: the unit's `flush`, run first: the scan store may still hold rows in memory.
        """
        self._sql = sql
        self._flush = flush

    def trouble_of(self, request_id: str) -> tuple[str | None, str | None, datetime | None, datetime | None]:
        """(trouble, reason, first sign, eta) recorded on a request."""
        self._flush()
        row = self._sql.execute(
            "SELECT trouble, trouble_reason, trouble_at, eta FROM replenishment_request WHERE id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            return None, None, None, None
        return row[0], row[1], _at(row[2]), _at(row[3])

    def record_trouble(
        self, request_id: str, *, trouble: str, reason: str, first_at: datetime, eta: datetime | None
    ) -> None:
        """Keep upstream's warning on the request; a new ETA replaces the old one."""
        self._sql.execute(
            "UPDATE replenishment_request SET trouble = ?, trouble_reason = ?, trouble_at = ?, "
            "eta = coalesce(?, eta) WHERE id = ?",
            (trouble, reason or None, to_text(first_at), to_text(eta) if eta else None, request_id),
        )

    def mark_safe(self, loop_id: str, at: datetime) -> int:
        """The line is safe again for every troubled open request of the loop (a reserve drawn):
        the disruption-response clock stops at `at`. Returns how many requests it stopped."""
        self._flush()
        cur = self._sql.execute(
            "UPDATE replenishment_request SET safe_at = ? WHERE loop_id = ? AND closed_at IS NULL "
            "AND trouble_at IS NOT NULL AND safe_at IS NULL",
            (to_text(at), loop_id),
        )
        return int(cur.rowcount)

    # -- re-route --------------------------------------------------------------------------------

    def route_of(self, loop_id: str) -> str | None:
        row = self._sql.execute("SELECT source FROM loop_route WHERE loop_id = ?", (loop_id,)).fetchone()
        return str(row[0]) if row else None

    def set_route(self, loop_id: str, source: str | None, *, at: datetime, actor: str | None) -> None:
        """Route the loop to `source`; None: back to its configured source."""
        self._sql.execute("DELETE FROM loop_route WHERE loop_id = ?", (loop_id,))
        if source is not None:
            self._sql.execute(
                "INSERT INTO loop_route (loop_id, source, routed_at, routed_by) VALUES (?, ?, ?, ?)",
                (loop_id, source, to_text(at), actor),
            )

    def open_of_loop(self, loop_id: str) -> list[OpenOfLoop]:
        """The loop's open requests, oldest first, with their cards' states."""
        self._flush()
        rows = self._sql.execute(
            "SELECT r.id, r.card_id, c.state, r.source, r.quantity, r.raised_at, r.trouble_at, "
            "r.shortfall_of FROM replenishment_request r "
            "JOIN card c ON c.id = r.card_id AND c.open_request_id = r.id "
            "WHERE r.loop_id = ? AND r.closed_at IS NULL ORDER BY r.loop_seq",
            (loop_id,),
        ).fetchall()
        return [OpenOfLoop(r[0], r[1], r[2], r[3], r[4], from_text(r[5]), _at(r[6]), r[7]) for r in rows]

    def add_cancel(
        self,
        request_id: str,
        *,
        loop_id: str,
        card_id: str,
        source: str,
        reason: str,
        replaced_by: str | None,
        actor: str | None,
        at: datetime,
    ) -> None:
        """A cancel for upstream, sent by the cancel outbox until upstream answers `cancelled`. Sent
        even for a request still `pending` here: the relay may have handed it to the broker already
        (its PUBACK not yet marked), and upstream answers a cancel of a request it never saw too."""
        self._sql.execute(
            "INSERT INTO request_cancel (request_id, loop_id, card_id, source, reason, replaced_by, actor, "
            "cancelled_at, publish_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (request_id, loop_id, card_id, source, reason, replaced_by, actor, to_text(at)),
        )
        # Not published yet: the relay must not send it now (it skips closed rows anyway), and the
        # status bar's count of unsent requests must not count it.
        self._sql.execute(
            "UPDATE replenishment_request SET publish_state = 'cancelled' WHERE id = ? "
            "AND publish_state = 'pending'",
            (request_id,),
        )

    def cancel_answered(self, request_id: str, at: datetime) -> bool:
        """Upstream confirmed a cancel: stop sending it. False when no cancel of it was waiting."""
        cur = self._sql.execute(
            "UPDATE request_cancel SET answered_at = ? WHERE request_id = ? AND answered_at IS NULL",
            (to_text(at), request_id),
        )
        return bool(cur.rowcount)

    def cancels_published(self, request_ids: list[str], at: datetime) -> None:
        self._sql.executemany(
            "UPDATE request_cancel SET publish_count = publish_count + 1, last_published_at = ? "
            "WHERE request_id = ?",
            [(to_text(at), r) for r in request_ids],
        )

    # -- delivery in full ------------------------------------------------------------------------

    def last_delivered(self, card_id: str) -> Delivered | None:
        """The card's newest delivered request."""
        self._flush()
        row = self._sql.execute(
            "SELECT id, loop_id, quantity, closed_at, short_qty IS NOT NULL OR damaged_qty IS NOT NULL "
            "FROM replenishment_request WHERE card_id = ? AND status = 'delivered' "
            "ORDER BY closed_at DESC LIMIT 1",
            (card_id,),
        ).fetchone()
        return Delivered(row[0], row[1], row[2], from_text(row[3]), bool(row[4])) if row else None

    def record_delivery(self, request_id: str, *, short: int, damaged: int) -> None:
        self._sql.execute(
            "UPDATE replenishment_request SET short_qty = ?, damaged_qty = ? WHERE id = ?",
            (short, damaged, request_id),
        )

    def mark_shortfall(self, request_id: str, of: str) -> None:
        self._flush()
        self._sql.execute("UPDATE replenishment_request SET shortfall_of = ? WHERE id = ?", (of, request_id))


@dataclass(frozen=True)
class DueCancel:
    """A cancel the outbox must (re-)send."""

    request_id: str
    loop_id: str
    card_id: str
    source: str
    reason: str
    replaced_by: str | None
    cancelled_at: datetime
    publish_count: int


def due_cancels(sql: Any, stale_before: datetime, limit: int = 100) -> list[DueCancel]:
    """Cancels upstream has not confirmed, never sent or last sent before `stale_before`."""
    rows = sql.execute(
        "SELECT request_id, loop_id, card_id, source, reason, replaced_by, cancelled_at, publish_count "
        "FROM request_cancel WHERE answered_at IS NULL AND (last_published_at IS NULL OR "
        "last_published_at < ?) ORDER BY cancelled_at LIMIT ?",
        (to_text(stale_before), limit),
    ).fetchall()
    return [DueCancel(r[0], r[1], r[2], r[3], r[4], r[5], from_text(r[6]), r[7]) for r in rows]
