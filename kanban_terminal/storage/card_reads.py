"""Queries for screens, `status`, the CLI and the lost-card check: cards by loop and
state, open requests, the newest log rows, refused input.

Each function reads in one snapshot (`Database.reading()`), or in the caller's unit of work when it
takes one, and returns table rows or plain values; services turn them into frozen view rows. It
must never write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select

from kanban_terminal.storage.db import Database
from kanban_terminal.storage.tables import CardLogRow, CardRow, RejectedInputRow, RequestRow
from kanban_terminal.storage.types import from_text, to_text
from kanban_terminal.storage.unit_of_work import UnitOfWork


def board(db: Database, exclude: Sequence[str] = ()) -> tuple[dict[str, Counter[str]], list[RequestRow]]:
    """Active cards counted by loop and state (but the `exclude`d: red cards), and the open requests
    oldest first (one snapshot)."""
    with db.reading() as session:
        cards = session.exec(
            select(CardRow.loop_id, CardRow.state).where(
                col(CardRow.retired).is_(False), col(CardRow.id).not_in(exclude)
            )
        )
        per_loop: dict[str, Counter[str]] = {}
        for loop_id, state in cards:
            per_loop.setdefault(loop_id, Counter())[state] += 1
        requests = session.exec(
            select(RequestRow).where(col(RequestRow.closed_at).is_(None)).order_by(col(RequestRow.raised_at))
        ).all()
    return per_loop, list(requests)


def newest_log_rows(db: Database, limit: int) -> list[CardLogRow]:
    with db.reading() as session:
        return list(session.exec(select(CardLogRow).order_by(col(CardLogRow.id).desc()).limit(limit)).all())


def card(db: Database, card_id: str) -> CardRow | None:
    with db.reading() as session:
        return session.get(CardRow, card_id)


def rejected_inputs(db: Database, limit: int) -> list[RejectedInputRow]:
    """Refused input, newest first."""
    with db.reading() as session:
        return list(
            session.exec(
                select(RejectedInputRow).order_by(col(RejectedInputRow.id).desc()).limit(limit)
            ).all()
        )


def circulating_cards(db: Database, states: Sequence[str]) -> list[CardRow]:
    """Active cards in one of `states`."""
    with db.reading() as session:
        return list(
            session.exec(
                select(CardRow).where(col(CardRow.retired).is_(False), col(CardRow.state).in_(states))
            ).all()
        )


def requests_since(db: Database, loop_id: str, since: datetime, at_most: int) -> int:
    """How many requests `loop_id` raised after `since`, counting no further than `at_most`."""
    with db.reading() as session:
        moved = session.connection().execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM replenishment_request WHERE loop_id = :loop "
                "AND raised_at > :since LIMIT :cards)"
            ),
            {"loop": loop_id, "since": to_text(since), "cards": at_most},
        )
        return int(moved.scalar_one())


def card_ids_of_loop(uow: UnitOfWork, loop_id: str) -> list[str]:
    """Every card id the loop ever had (retired ones too), inside a unit of work."""
    return list(uow.session.exec(select(CardRow.id).where(CardRow.loop_id == loop_id)).all())


SCAN_EVENTS = ("bin_empty", "request_raised", "delivered", "found", "short_delivered")
"""The card-log events of every write that sets a card's `last_scan_at` (`ScanStore.update_card` with
`scanned`: a scan's or bin signal's decision in services/scanning.py, a short delivery in
services/delivery_issue.py), each written with its card's new `last_scan_at` as `occurred_at`. A
re-route (`scanned=False`), upstream statuses, the relay and lost-card flags write other events.
tests/integration/test_health_read.py holds every door to the card table's answer."""

_NEWEST_SCAN = (
    "SELECT max(occurred_at) FROM card_log WHERE id IN ("
    + " UNION ALL ".join(f"SELECT max(id) FROM card_log WHERE event = '{e}'" for e in SCAN_EVENTS)
    + ")"
)
"""The newest row of each scan event through `ix_card_log_event` ((event, rowid): one probe each),
then those few rows' times: O(log n). `max(card.last_scan_at)` walked every card's row, 1.3-1.6 ms of
CPU at 20,000 cards once a minute (no index on the column, and adding one takes a migration)."""


_PENDING = "SELECT count(*), min(raised_at) FROM replenishment_request WHERE publish_state = 'pending'"
"""Through `ix_request_publish_state`: the requests the broker has not acknowledged."""


def health(db: Database) -> tuple[int, datetime | None, datetime | None]:
    """Requests not yet acknowledged by the broker, when the oldest was raised, and the newest scan
    (one snapshot, for the health message).

    The newest scan is the latest time of each scan event's newest-recorded row: the cards' newest
    `last_scan_at` while scan times rise with the log. Where they do not (a device's buffered
    signal recorded late, a clock stepped back) it leans to what was recorded last, where the card
    table kept the latest time any card still held."""
    with db.snapshot() as sql:  # the driver's connection: the ORM's select and text() cost ~250 us each
        queued, oldest = sql.execute(_PENDING).fetchone()
        (last_scan,) = sql.execute(_NEWEST_SCAN).fetchone()
    return int(queued), _stamp(oldest), _stamp(last_scan)


def _stamp(value: Any) -> datetime | None:
    # func.min/max over the text column bypass the UtcDateTime type: convert here.
    return from_text(value) if isinstance(value, str) else value
