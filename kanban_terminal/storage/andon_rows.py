"""The andon feature's rows: andons, their fired escalation tiers, shelves, and their card-log rows.

`AndonRows` works inside one transaction: a unit of work's (`UnitOfWork.andons`, for writes) or a
read snapshot's. It maps table rows to the domain's `Andon` and back, so the use cases
(services/andon.py, services/escalation.py) hold no SQL and no ORM session. Reads in a snapshot of
their own are in storage/andon_reads.py (this module must not import the `Database`: the unit of
work imports it).

It must not decide anything (the domain's andon rules do) and never commits: the unit of work does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from kanban_terminal.domain.andon import Andon, AndonKind, AndonState
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import (
    AndonEscalationRow,
    AndonRow,
    AndonShelveRow,
    AndonSignalRow,
    CardLogRow,
    CardRow,
    RequestRow,
)

NEEDS_ATTENTION = (
    AndonState.RAISED.value,
    AndonState.ACKNOWLEDGED.value,
    AndonState.RESOLVED_UNACKNOWLEDGED.value,
)
"""States of an andon still shown as needing attention (active, or resolved but unacknowledged)."""

_CHANGING = (
    "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "note", "cancelled_at",
    "cancelled_by",
)  # fmt: skip


class DuplicateAndon(Exception):
    """A second andon for the same request: the unique index on andon.request_id refused it (another
    process raised it first). The unit of work it happened in rolls back."""


def to_domain(row: AndonRow) -> Andon:
    return Andon(
        id=row.id,
        kind=AndonKind(row.kind),
        station=row.station,
        reason=row.reason,
        raised_at=row.raised_at,
        source=row.source,
        raised_by=row.raised_by,
        card_id=row.card_id,
        request_id=row.request_id,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        note=row.note,
        cancelled_at=row.cancelled_at,
        cancelled_by=row.cancelled_by,
    )


class AndonRows:
    """The andon repository inside one open transaction (write or read)."""

    def __init__(self, session: Session):
        self.session = session

    # -- reads -------------------------------------------------------------------------------------

    def get(self, andon_id: str) -> Andon | None:
        row = self.session.get(AndonRow, andon_id)
        return to_domain(row) if row is not None else None

    def attention(self) -> list[Andon]:
        """Andons needing attention, oldest raise first."""
        stmt = (
            select(AndonRow).where(col(AndonRow.state).in_(NEEDS_ATTENTION)).order_by(col(AndonRow.raised_at))
        )
        return [to_domain(r) for r in self.session.exec(stmt)]

    def history(self, limit: int) -> list[Andon]:
        """Closed or cancelled andons, newest raise first."""
        stmt = (
            select(AndonRow)
            .where(col(AndonRow.state).not_in(NEEDS_ATTENTION))
            .order_by(col(AndonRow.raised_at).desc())
            .limit(limit)
        )
        return [to_domain(r) for r in self.session.exec(stmt)]

    def unacknowledged(self) -> list[Andon]:
        """Andons nobody has acknowledged or cancelled: what escalation looks at."""
        stmt = select(AndonRow).where(
            col(AndonRow.acknowledged_at).is_(None), col(AndonRow.cancelled_at).is_(None)
        )
        return [to_domain(r) for r in self.session.exec(stmt)]

    def fired_tiers(self, ids: list[str]) -> dict[str, tuple[int, ...]]:
        """The escalation tiers fired so far, by andon id (absent: none fired)."""
        out: dict[str, list[int]] = {}
        if ids:
            rows = self.session.exec(
                select(AndonEscalationRow).where(col(AndonEscalationRow.andon_id).in_(ids))
            )
            for r in rows:
                out.setdefault(r.andon_id, []).append(r.tier)
        return {k: tuple(v) for k, v in out.items()}

    def shelved_until(self, source_id: str, now: datetime) -> datetime | None:
        """When the shelve on `source_id` ends, or None if it is not shelved now."""
        stmt = select(AndonShelveRow).where(
            AndonShelveRow.source == source_id, col(AndonShelveRow.lifted_at).is_(None)
        )
        ends = [r.until for r in self.session.exec(stmt) if r.shelved_at <= now < r.until]
        return max(ends, default=None)

    def signal_seen(self, signal_id: str) -> bool:
        """Whether a device's andon signal with this id was handled already (QoS 1 redelivery)."""
        return self.session.get(AndonSignalRow, signal_id) is not None

    def newest_open_call(self, source: str, station: str) -> Andon | None:
        """The newest unacknowledged CALL `source` raised at `station` (what its cancel withdraws)."""
        row = self.session.exec(
            select(AndonRow)
            .where(
                AndonRow.source == source,
                AndonRow.station == station,
                AndonRow.kind == AndonKind.CALL.value,
                AndonRow.state == AndonState.RAISED.value,
            )
            .order_by(col(AndonRow.raised_at).desc())
        ).first()
        return to_domain(row) if row is not None else None

    def request(self, request_id: str) -> RequestRow | None:
        """The replenishment request a material andon is linked to."""
        return self.session.get(RequestRow, request_id)

    # -- writes ------------------------------------------------------------------------------------

    def add(self, andon: Andon) -> None:
        """Insert a new andon now, so its log row and the line state see it.

        Raises:
            DuplicateAndon: its request already has an andon (raised by another process).
        """
        self.session.add(
            AndonRow(
                id=andon.id, kind=andon.kind.value, station=andon.station, reason=andon.reason,
                source=andon.source, raised_at=andon.raised_at, raised_by=andon.raised_by,
                card_id=andon.card_id, request_id=andon.request_id, state=andon.state.value,
            )
        )  # fmt: skip
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise DuplicateAndon(str(exc.orig)) from exc

    def store(self, andon: Andon) -> None:
        """Write what an action changed (acknowledge, resolve, cancel) onto the stored andon."""
        row = self.session.get(AndonRow, andon.id)
        assert row is not None, "an action is decided on an andon loaded in this transaction"
        for name in _CHANGING:
            setattr(row, name, getattr(andon, name))
        row.state = andon.state.value

    def fire_tier(self, andon_id: str, tier: int, role: str, at: datetime) -> Andon | None:
        """Record escalation `tier` of `andon_id` once; None if it no longer may fire (acknowledged or
        cancelled meanwhile, or fired already, e.g. by another process): re-checked under the write lock."""
        row = self.session.get(AndonRow, andon_id)
        if row is None or row.acknowledged_at is not None or row.cancelled_at is not None:
            return None
        if self.session.get(AndonEscalationRow, (andon_id, tier)) is not None:
            return None
        self.session.add(AndonEscalationRow(andon_id=andon_id, tier=tier, role=role, fired_at=at))
        self.session.flush()
        return to_domain(row)

    def record_signal(
        self, signal_id: str, *, device: str, type_: str, at: datetime, outcome: str, andon_id: str | None
    ) -> None:
        """Keep what a device's andon signal did, under its id: the dedupe key of its redeliveries."""
        self.session.add(
            AndonSignalRow(
                id=signal_id, device=device, type=type_, received_at=at, outcome=outcome, andon_id=andon_id
            )
        )

    def shelve(self, source_id: str, by: str, at: datetime, until: datetime) -> None:
        self.session.add(AndonShelveRow(source=source_id, shelved_by=by, shelved_at=at, until=until))

    def lift_shelves(self, at: datetime) -> list[str]:
        """Lift every shelve still in force after `at` (lifted_at = at); returns their sources."""
        stmt = select(AndonShelveRow).where(
            col(AndonShelveRow.lifted_at).is_(None), col(AndonShelveRow.until) > at
        )
        rows = list(self.session.exec(stmt))
        for row in rows:
            row.lifted_at = at
            self.session.add(row)
        return sorted({r.source for r in rows})

    def card_loop(self, card_id: str) -> str | None:
        """The loop of the card an andon is linked to (None if the card is unknown)."""
        card = self.session.get(CardRow, card_id)
        return card.loop_id if card is not None else None

    def log(self, row: CardLogRow) -> None:
        """Append one row to the chained card log (the andon's facts in their columns)."""
        card_log.append(self.session, row)


class _HasAndons(Protocol):
    @property
    def andons(self) -> AndonRows: ...


AndonScope = _HasAndons | Session
"""Where andon rows are read or written: a unit of work (`uow.andons`), or an ORM session still
handed in by services/andon_signals.py (until it moves to the unit of work) and by read snapshots."""


def andons_in(scope: AndonScope) -> AndonRows:
    return AndonRows(scope) if isinstance(scope, Session) else scope.andons
