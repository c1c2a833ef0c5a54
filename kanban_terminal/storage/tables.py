"""The tables of a terminal's database. SQLModel lives here and nowhere else.

`card` holds each card's current state; `card_log` every change ever made (append-only: triggers in
the migrations reject UPDATE and DELETE); `replenishment_request` is both the request record and the
outbox the MQTT relay drains. Part, loop and card rows mirror the configuration so the log can be
read without it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from kanban_terminal.storage.types import UtcDateTime


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UtcDateTime(), nullable=nullable, index=index)


class PartRow(SQLModel, table=True):
    __tablename__ = "part"

    number: str = Field(primary_key=True)
    description: str = ""
    unit: str = "pcs"


class LoopRow(SQLModel, table=True):
    __tablename__ = "loop"

    id: str = Field(primary_key=True)
    part_number: str = Field(foreign_key="part.number")
    station: str
    point_of_use: str
    source: str
    container_quantity: int
    card_count: int
    lead_time_s: float
    safety_factor: float
    next_seq: int = 1
    """Next per-loop request sequence number, so upstream can see gaps."""


class CardRow(SQLModel, table=True):
    __tablename__ = "card"

    id: str = Field(primary_key=True)
    loop_id: str = Field(foreign_key="loop.id", index=True)
    state: str
    state_since: datetime = Field(sa_column=_utc())
    last_scan_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    last_seen_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    open_request_id: str | None = None
    retired: bool = False
    """Card no longer in the configuration; kept so its history stays readable."""


class CardLogRow(SQLModel, table=True):
    __tablename__ = "card_log"
    __table_args__ = (
        # Partial (migration 0011): every read compares these with a value, and a bin signal's rows,
        # which have neither, then write no page of them.
        Index("ix_card_log_actor_id", "actor", "id", sqlite_where=text("actor IS NOT NULL")),
        Index("ix_card_log_andon_id", "andon_id", sqlite_where=text("andon_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(sa_column=_utc(index=True))
    """When it happened: the scan, or a device's own timestamp for a buffered signal."""
    recorded_at: datetime = Field(sa_column=_utc())
    """When this terminal wrote it."""
    event: str = Field(index=True)
    card_id: str | None = None
    loop_id: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    request_id: str | None = None
    actor: str | None = None
    source: str
    """Which door it came through: keyboard, serial:<port>, mqtt:<device>, cli, upstream, system."""
    detail: str = ""
    """Human-readable detail (lead time, reason, note); external text is escaped before it lands here."""
    andon_id: str | None = None
    """The andon event this row belongs to, for andon actions."""
    andon_kind: str | None = None
    """`stop` or `call`, on every row of an andon (migration 0006): metrics read it, never `detail`."""
    andon_reason: str | None = None
    """The andon's configured reason code (QUAL, MACH, MAT, ...), on every row of an andon."""
    station: str | None = None
    """The station an andon is about, on every row of an andon (the log's station filter reads it)."""
    downtime_s: float | None = None
    """Line-stop time from raise to resolution, on the resolve row of a STOP; None otherwise."""
    elapsed_s: float | None = None
    """Seconds from the andon's raise to this row's acknowledge, resolve or cancel, counted from its
    elapsed anchor so a wall-clock step bends nothing (migration 0012); None without an anchor (the
    wall difference is what there is) and on every row written before."""
    backfilled: bool | None = None
    """True only on andon rows written before migration 0006, whose four fields above were derived
    from the `andon` table afterwards: their hash covers the original fields alone (card_log.py)."""
    hash: str = ""
    """SHA-256 chaining this row to the previous one (storage/card_log.py); tamper evidence."""


class RequestRow(SQLModel, table=True):
    __tablename__ = "replenishment_request"
    __table_args__ = (
        # A card can never have two open requests: the database itself refuses a second one.
        Index("ux_request_open_card", "card_id", unique=True, sqlite_where=text("closed_at IS NULL")),
        Index("ix_request_outbox", "publish_state", "loop_id", "loop_seq"),
    )

    id: str = Field(primary_key=True)
    """UUID: the idempotency key upstream deduplicates by."""
    card_id: str = Field(foreign_key="card.id")
    loop_id: str = Field(foreign_key="loop.id")
    loop_seq: int
    part_number: str
    quantity: int
    station: str
    point_of_use: str
    source: str
    raised_at: datetime = Field(sa_column=_utc())
    due_at: datetime = Field(sa_column=_utc())
    status: str
    """Card-side progress: queued, sent, accepted, picked, shipped, delivered, rejected, cancelled,
    rerouted (cancelled at its source by a re-route and raised again at the other, issue 18)."""
    publish_state: str = "pending"
    """Outbox state: pending (to publish), published (broker PUBACKed), done (upstream answered)."""
    publish_count: int = 0
    last_published_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    upstream_status: str | None = None
    upstream_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    eta: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    lead_time_s: float | None = None
    trouble: str | None = None
    """Upstream's warning about this open request: `delayed` or `at_risk` (migration 0010)."""
    trouble_reason: str | None = None
    trouble_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    """The first sign of trouble: starts the disruption-response clock; later warnings keep it."""
    safe_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    """When the line was safe again after trouble: delivered, re-routed or reserve drawn."""
    short_qty: int | None = None
    """Recorded at the delivery scan: this many parts were missing (delivery in full, issue 17)."""
    damaged_qty: int | None = None
    """Recorded at the delivery scan: this many parts arrived damaged."""
    shortfall_of: str | None = None
    """The request whose short delivery this request makes up for."""


class RejectedInputRow(SQLModel, table=True):
    __tablename__ = "rejected_input"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=_utc(index=True))
    source: str
    input: str
    """The input as received, escaped: no raw byte from outside is stored."""
    reason: str


class InboundSignalRow(SQLModel, table=True):
    """Bin signals already handled, by (device, boot, seq): QoS 1 redeliveries and device retries
    are recognised here, in the same transaction that applied the signal (idempotent consumer)."""

    __tablename__ = "inbound_signal"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the table: one b-tree (migration 0011)

    device: str = Field(primary_key=True)
    boot: str = Field(primary_key=True)
    """The device's boot id: a reboot restarts `seq`, so the key must include it."""
    seq: int = Field(primary_key=True)
    received_at: datetime = Field(sa_column=_utc(index=True))
    """When this terminal committed it; rows older than the retention are pruned."""
    outcome: str
    """What the signal did (request_raised, already_requested, ...)."""


# Outbox indexes the relay's two queries walk in rowid (= per-loop seq) order (migration 0002).
Index("ix_request_publish_state", RequestRow.__table__.c.publish_state)  # type: ignore[attr-defined]
Index(
    "ix_request_publish_state_last",
    RequestRow.__table__.c.publish_state,  # type: ignore[attr-defined]
    RequestRow.__table__.c.last_published_at,  # type: ignore[attr-defined]
    sqlite_where=text("publish_state = 'published'"),  # partial since 0011: a raise writes no page of it
)


class CardReplacementRow(SQLModel, table=True):
    """A lost card replaced by a newly printed one (issue 6): the old id stays retired for good."""

    __tablename__ = "card_replacement"

    old_id: str = Field(primary_key=True)
    new_id: str = Field(unique=True)
    loop_id: str
    replaced_at: datetime = Field(sa_column=_utc())


class AndonRow(SQLModel, table=True):
    """One andon event (CALL or STOP) and where it is in its lifecycle; every action is also logged."""

    __tablename__ = "andon"
    __table_args__ = (
        # A material andon is raised at most once per overdue request, whatever the timer does.
        Index("ux_andon_request", "request_id", unique=True, sqlite_where=text("request_id IS NOT NULL")),
    )

    id: str = Field(primary_key=True)
    kind: str
    station: str
    reason: str
    source: str
    raised_at: datetime = Field(sa_column=_utc(index=True))
    raised_by: str | None = None
    card_id: str | None = None
    request_id: str | None = None
    acknowledged_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    acknowledged_by: str | None = None
    resolved_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    resolved_by: str | None = None
    note: str = ""
    cancelled_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    cancelled_by: str | None = None
    state: str = Field(index=True)
    """Denormalised AndonState so the active list is one indexed query."""


class AndonEscalationRow(SQLModel, table=True):
    """An escalation tier that fired: the primary key makes "exactly once per (event, tier)" hold."""

    __tablename__ = "andon_escalation"

    andon_id: str = Field(primary_key=True, foreign_key="andon.id")
    tier: int = Field(primary_key=True)
    role: str
    fired_at: datetime = Field(sa_column=_utc())


class AndonShelveRow(SQLModel, table=True):
    """A shelved andon source: bounded by `until`, may be lifted early; never a permanent disable."""

    __tablename__ = "andon_shelve"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    shelved_by: str
    shelved_at: datetime = Field(sa_column=_utc())
    until: datetime = Field(sa_column=_utc())
    lifted_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class AndonSignalRow(SQLModel, table=True):
    """Device signal ids already handled, so a redelivered MQTT message raises nothing twice."""

    __tablename__ = "andon_signal"

    id: str = Field(primary_key=True)
    """The device's own "<device>:<boot>:<seq>" id."""
    device: str
    type: str
    received_at: datetime = Field(sa_column=_utc())
    outcome: str
    andon_id: str | None = None


class CredentialRow(SQLModel, table=True):
    """A team lead's PIN hash (scrypt, salted, parameters inside the string) and lockout counters.

    Only the hash is stored, never the PIN; the row lives in the database, not the config file.
    """

    __tablename__ = "credential"

    badge: str = Field(primary_key=True)
    pin_hash: str
    enrolled_at: datetime = Field(sa_column=_utc())
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    blocked: bool = False


class RequestCancelRow(SQLModel, table=True):
    """A request cancelled at its source by a re-route: the outbox of cancels (migration 0010).

    Re-sent until upstream answers `cancelled` for the request id (`answered_at`), as requests are.
    """

    __tablename__ = "request_cancel"

    request_id: str = Field(primary_key=True)
    loop_id: str
    card_id: str
    source: str
    """The source the request is cancelled at."""
    reason: str
    replaced_by: str | None = None
    """The request raised at the second source in the same transaction."""
    actor: str | None = None
    cancelled_at: datetime = Field(sa_column=_utc())
    publish_count: int = 0
    last_published_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    answered_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    """When upstream answered `cancelled` (index ix_request_cancel_answered, migration 0010)."""


class LoopRouteRow(SQLModel, table=True):
    """The source a team lead re-routed a loop to; no row: the loop's configured source."""

    __tablename__ = "loop_route"

    loop_id: str = Field(primary_key=True)
    source: str
    routed_at: datetime = Field(sa_column=_utc())
    routed_by: str | None = None


class ElapsedAnchorRow(SQLModel, table=True):
    """Elapsed time of a running timer (an andon's escalation), stored so a restart or a reboot goes
    on counting from it instead of from the wall clock (domain/clocks.py; migration 0008)."""

    __tablename__ = "elapsed_anchor"

    key: str = Field(primary_key=True)
    """What is timed: `andon:<id>`."""
    boot_id: str
    """The kernel's boot id when saved: the monotonic reading below only means something on it."""
    mono_s: float
    """CLOCK_MONOTONIC seconds when saved."""
    elapsed_s: float
    """Elapsed seconds of the timer when saved."""
    saved_at: datetime = Field(sa_column=_utc())
    """Wall clock when saved: across a reboot only this survives."""


class RunwayWarningRow(SQLModel, table=True):
    """One runway-warning episode of a loop (issue 18): opened when its runway dropped below the
    margin, closed when it recovered. The partial unique index keeps it to one open episode a loop,
    so a warning is raised exactly once per episode, whatever the timer and a restart do."""

    __tablename__ = "runway_warning"
    __table_args__ = (
        Index("ux_runway_warning_open", "loop_id", unique=True, sqlite_where=text("cleared_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    loop_id: str = Field(index=True)
    raised_at: datetime = Field(sa_column=_utc())
    runway_s: float
    """The runway when the warning was raised."""
    margin_s: float
    andon_id: str | None = None
    """The material CALL raised for it; None when no MAT call reason is configured."""
    cleared_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    cleared_runway_s: float | None = None
