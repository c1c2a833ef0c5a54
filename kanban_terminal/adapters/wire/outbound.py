"""The messages the terminal publishes: line state, andon events, stack-light commands, health, availability.

The same strict models as the inbound side, so what the terminal sends is what its schema promises
(docs/schema/) and what a listener may validate against. Builders hand in the payload they made;
`encode` validates it and writes compact JSON. Optional fields a message may leave out are left out
(`exclude_unset`), not sent as null.

It must not decide anything: the services say what to send, this says how it is written.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from kanban_terminal.adapters.wire.fields import (
    Count,
    Id64,
    Ident,
    Message,
    Text40,
    Text200,
    Text1000,
    TimestampText,
    Version,
)

AndonStateName = Literal["raised", "acknowledged", "resolved_unacknowledged", "closed", "cancelled"]
Lamp = Literal["on", "off", "blink"]
LineCondition = Literal["running", "call", "stopped"]


class ActiveAndon(Message):
    """One andon event as the line state lists it (the event message's fields without the step)."""

    id: Id64
    kind: Literal["call", "stop"]
    station: Ident
    reason: Ident
    reason_label: Text200
    colour: Text40
    state: AndonStateName
    raised_at: TimestampText
    acknowledged_by: Text200 | None
    card: Ident | None
    """The kanban card of a material andon (reason MAT) whose request is overdue."""
    tiers_fired: list[Annotated[int, Field(ge=0, le=100)]]


class LineStateMessage(Message):
    """The line's current condition, retained on `kanban/v1/{site}/{line}/line_state`.

    `state` is `stopped` while any STOP is active, `call` while any CALL is, else `running`.
    """

    v: Version
    line: Ident
    terminal: Ident
    state: LineCondition
    at: TimestampText
    active: list[ActiveAndon]
    """The events needing attention, resolved-but-unacknowledged ones included."""


class AndonEventMessage(ActiveAndon):
    """One lifecycle step of one andon event on `kanban/v1/{site}/{line}/andon` (never retained):
    the event as the line state lists it (`ActiveAndon`), and the step.

    Listeners drop repeats by (`id`, `action`, `tier`).
    """

    v: Version
    line: Ident
    terminal: Ident
    action: Literal["raised", "acknowledged", "resolved", "cancelled", "escalated"]
    at: TimestampText
    actor: Text200 | None
    tier: Annotated[int, Field(ge=0, le=100)] | None = None
    """escalated only: the tier that fired (0-based)."""
    role: Text40 | None = None
    """escalated only: who is called now (team_lead, supervisor, manager)."""
    resolved_at: TimestampText | None = None
    note: Text1000 | None = None
    downtime_s: Count | None = None
    """A resolved STOP: whole seconds from raise to resolve."""
    elapsed_s: Count | None = None
    """acknowledged, resolved, cancelled and escalated: whole seconds from the raise to this step,
    counted on the terminal's monotonic clock (a wall-clock step between them bends nothing); absent
    when the terminal had no elapsed anchor for the andon (then `at` - `raised_at` is what there is)."""


class HandoverMessage(Message):
    """A shift taken over by its incoming team lead, on `kanban/v1/{site}/{line}/handover` (never
    retained): the sheet as acknowledged. Listeners drop repeats by (`line`, `production_day`, `shift`).
    """

    v: Version
    line: Ident
    terminal: Ident
    at: TimestampText
    actor: Text200
    """The badge of the team lead who took the shift over."""
    production_day: Text40
    """The plant's production day (`YYYY-MM-DD`, `[site] timezone`): a night shift's is the day it began."""
    shift: Annotated[int, Field(ge=1, le=24)]
    shift_start: TimestampText
    open_andons: list[Text200]
    loops_at_risk: list[Text200]
    suspended_cards: list[Id64]
    lost_cards: list[Id64]
    summary: Text1000


class LightCommand(Message):
    """Stack-light lamps for one device, on `kanban/v1/{site}/{line}/device/{device}/command`."""

    v: Version
    type: Literal["light"]
    state: LineCondition
    red: Lamp
    amber: Lamp
    green: Lamp


class BuzzerCommand(Message):
    """The stack light's buzzer, sent with every light command."""

    v: Version
    type: Literal["buzzer"]
    state: LineCondition
    on: bool


class HealthQueue(Message):
    requests: Count
    oldest_raised_at: TimestampText | None
    oldest_age_s: Count | None


class HealthMessage(Message):
    """How a terminal is, retained on `kanban/v1/{site}/{line}/terminal/{terminal}/health`.

    Judge it by `at`: a retained message outlives its terminal.
    """

    schema_: Version = Field(alias="schema")
    """Bumped only when a field changes meaning; new fields may be added."""
    terminal: Ident
    version: Text40
    at: TimestampText
    started_at: TimestampText
    uptime_s: Count
    state: Literal["ok", "degraded"]
    problems: list[Text200]
    link: Text40
    queue: HealthQueue
    disk_free_bytes: Count
    last_scan_at: TimestampText | None
    last_error: Text1000 | None
    last_error_at: TimestampText | None


class AvailabilityMessage(Message):
    """Whether a terminal is there, retained on `.../terminal/{terminal}/availability` (also the last will).

    Judge it by age: offline when `at` is older than 3 x `heartbeat_s`.
    """

    v: Version
    state: Literal["online", "offline"]
    terminal: Ident
    session: Id64
    """New at every start of the terminal."""
    at: TimestampText
    heartbeat_s: Annotated[float, Field(gt=0)]


class LogAnchorMessage(Message):
    """The head of a terminal's card log, retained on `.../terminal/{terminal}/log_anchor`.

    Published after upstream syncs and at least every `[terminal] anchor_every_minutes`; upstream
    peers keep every one they see (their anchor store). `kanban-terminal verify-log --anchors`
    then proves that the terminal's log still holds row `row` with exactly this `hash`, so nothing
    up to it was cut or rewritten (docs/RELIABILITY.md). Anchors of one terminal only grow: a
    smaller `row` than one already kept is itself a sign that the log was cut.
    """

    v: Version
    site: Ident
    line: Ident
    terminal: Ident
    row: Count
    """The id of the newest card-log row (0 for an empty log)."""
    hash: Annotated[str, StringConstraints(pattern=r"^(k1:)?[0-9a-f]{64}$")]
    """That row's stored hash: bare hex SHA-256, or `k1:` + HMAC-SHA256 for a keyed row."""
    key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] | None
    """Fingerprint of the terminal's log key (never the key); null before the key existed."""
    at: TimestampText


def encode(model: type[Message], payload: dict[str, Any]) -> bytes:
    """Validate `payload` as a `model` message and write it as compact UTF-8 JSON.

    Raises:
        pydantic.ValidationError: the payload breaks the schema (a bug in its builder, never input).
    """
    message = model.model_validate(payload)
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()
