"""The messages the terminal (and its upstream peer) receive: shape, then meaning against the config.

Each model checks its shape (strict types, printable bounded text, no unknown field) and, when a
`WireContext` is passed as pydantic's validation context, what only this terminal can judge: the
device is the topic's, the event id is `<device>:<boot>:<seq>` of this very message, the device and
its bin are configured, the station and reason exist, the device's clock is plausible. Without a
context (schema generation, tools) only the shape is checked.

It must not act on a message: no storage, no bus. `decode.py` turns a valid model into a domain value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kanban_terminal.adapters.wire.fields import (
    ID_PATTERN,
    TIMESTAMP_SCHEMA,
    Count,
    Id64,
    Ident,
    Message,
    Seq,
    Text40,
    Text64,
    Text200,
    Timestamp,
    TimestampText,
    Uuid,
    Version,
    leave_out,
)
from kanban_terminal.config import TerminalConfig
from kanban_terminal.config_bins import BinIndex

MAX_FUTURE = timedelta(minutes=5)
"""Device clocks drift; a timestamp further ahead than this is a broken clock, not a signal."""
MAX_AGE = timedelta(days=7)
"""A device may buffer signals while offline, but not for longer than this."""

EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,200}$")]
"""`<device>:<boot>:<seq>`, as the bridge writes it."""


def _present(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null", "leave the field out instead of sending null")
    return value


OptionalIdent = Annotated[
    Ident | None, BeforeValidator(_present), WithJsonSchema({"type": "string", "pattern": ID_PATTERN})
]
"""An id that may be left out, but is never `null`."""


@dataclass(frozen=True)
class WireContext:
    """What a message is judged against beyond its shape: the configuration, the clock, the topic."""

    bins: BinIndex
    """The devices and bins of `[[bins]]` (shared with the signal applier: one table a line)."""
    stations: frozenset[str]
    reasons: frozenset[str]
    now: datetime | None = None
    topic_device: str | None = None

    @classmethod
    def of(cls, config: TerminalConfig, bins: BinIndex | None = None) -> WireContext:
        """The context of `config`; `bins` is its `BinIndex` when the caller has built one."""
        return cls(
            bins=BinIndex(config.bins) if bins is None else bins,
            stations=frozenset(s.id for s in config.stations),
            reasons=frozenset(r.code for r in config.andon_reasons),
        )

    def for_message(self, now: datetime, topic_device: str | None) -> WireContext:
        # The constructor, not `dataclasses.replace`, which looks the fields up each call (~4x the
        # cost; once per inbound message, issue 19).
        return WireContext(self.bins, self.stations, self.reasons, now, topic_device)


def _context(info: ValidationInfo) -> WireContext | None:
    return info.context if isinstance(info.context, WireContext) else None


def _refuse(kind: str, message: str, **values: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, values or None)


class _DeviceSignal(Message):
    v: Version
    id: EventId
    device: Ident
    """Must equal the `{device}` level of the topic."""
    boot: Ident
    """New random value at every device boot."""
    seq: Seq
    """Increases per message within one boot; (device, boot, seq) is the dedupe key."""

    def _check_identity(self, ctx: WireContext | None) -> None:
        if self.id != f"{self.device}:{self.boot}:{self.seq}":
            raise _refuse("event_id", "id must be '<device>:<boot>:<seq>' of this message")
        if ctx is not None and ctx.topic_device is not None and self.device != ctx.topic_device:
            raise _refuse("topic", "device in payload does not match the topic")

    @staticmethod
    def _check_time(at: datetime, ctx: WireContext | None) -> None:
        if ctx is None or ctx.now is None:
            return
        if at > ctx.now + MAX_FUTURE:
            raise _refuse("clock", "at is in the future: check the device clock")
        if at < ctx.now - MAX_AGE:
            raise _refuse("clock", "at is older than 7 days")


class BinSignalMessage(_DeviceSignal):
    """A bin sensor (or the firmware bridge for it) says a bin ran empty or was refilled.

    Topic `kanban/v1/{site}/{line}/device/{device}/signal`. The device, and its `bin` for a board
    watching several, must be configured under `[[bins]]`.
    """

    type: Literal["bin_empty", "bin_full"]
    at: Timestamp
    """When the device saw it: at most 5 minutes ahead of, 7 days behind the terminal's clock."""
    bin: OptionalIdent = Field(None, json_schema_extra=leave_out)
    """Which bin, for a device that watches several; left out for a one-bin device."""
    short: Annotated[
        Count | None, BeforeValidator(_present), WithJsonSchema({"type": "integer", "minimum": 1})
    ] = Field(None, json_schema_extra=leave_out)
    """`bin_full` only: parts missing from the delivered bin, from a sensor that weighs or counts
    (delivery in full, issue 17); the terminal requests the shortfall. Left out when in full."""

    @model_validator(mode="after")
    def _meaning(self, info: ValidationInfo) -> BinSignalMessage:
        ctx = _context(info)
        self._check_identity(ctx)
        self._check_time(self.at, ctx)
        if self.short is not None and (self.type != "bin_full" or self.short < 1):
            raise _refuse("short", "short is a count of at least 1, and only on bin_full")
        if ctx is not None:
            if not ctx.bins.knows_device(self.device):
                raise _refuse("unknown_device", "unknown device: add it under [[bins]]")
            if not ctx.bins.knows(self.device, self.bin):
                raise _refuse("unknown_bin", "unknown bin {bin} of device {device}: see [[bins]]",
                              bin=self.bin or "(none)", device=self.device)  # fmt: skip
        return self


class AndonSignalMessage(_DeviceSignal):
    """An andon button: call for help, stop the line (key switches only), or cancel one's own call.

    Same topic as bin signals; `station` and `reason` must be configured.
    """

    type: Literal["andon_call", "andon_stop", "andon_cancel"]
    station: Ident
    reason: OptionalIdent = Field(None, json_schema_extra=leave_out)
    """A configured reason code; required except for `andon_cancel`."""
    at: Annotated[Timestamp | None, BeforeValidator(_present), WithJsonSchema(TIMESTAMP_SCHEMA)] = Field(
        None, json_schema_extra=leave_out
    )
    """When the device saw the press (optional)."""

    @model_validator(mode="after")
    def _meaning(self, info: ValidationInfo) -> AndonSignalMessage:
        ctx = _context(info)
        self._check_identity(ctx)
        if self.reason is None and self.type != "andon_cancel":
            raise _refuse("reason", "reason is required except for andon_cancel")
        if self.at is not None:
            self._check_time(self.at, ctx)
        if ctx is not None:
            if self.station not in ctx.stations:
                raise _refuse("unknown_station", "unknown station {station}", station=self.station)
            if self.reason is not None and self.reason not in ctx.reasons:
                raise _refuse("unknown_reason", "unknown reason code {reason}", reason=self.reason)
        return self


class UpstreamStatusMessage(Message):
    """Upstream's answer to a request: it has it, picked it, shipped it, or will not serve it; or a
    warning about it (`delayed` with the new `eta`, `at_risk` with a `reason`), which the card shows
    without moving; or `cancelled`, its answer to a request cancel (a re-route).

    Topic `kanban/v1/{site}/{line}/status`.
    """

    v: Version
    id: Id64
    """Unique event id, 1-64 printable characters."""
    request_id: Uuid
    status: Literal["accepted", "picked", "shipped", "rejected", "delayed", "at_risk", "cancelled"]
    at: Timestamp
    eta: Timestamp | None = None
    """Expected arrival at the line (shipped; required with delayed: the new ETA), or null."""
    card: Ident | None = None
    loop: Ident | None = None
    by: Text64 | None = None
    """Who answered (information only)."""
    reason: Text200 | None = None
    """Why upstream rejected the request, or why it is at risk or delayed (shown on the card)."""

    @model_validator(mode="after")
    def _eta_of_delay(self) -> UpstreamStatusMessage:
        if self.status == "delayed" and self.eta is None:
            raise _refuse("eta", "a delayed status must give the new eta")
        return self


class RequestMessage(Message):
    """A replenishment request: bring `quantity` of `part` to `point_of_use`. `id` is the idempotency key.

    Topic `kanban/v1/{site}/{line}/requests`; published by the terminal, consumed by upstream.
    """

    v: Version
    id: Uuid
    site: Ident
    line: Ident
    terminal: Ident
    loop: Ident
    loop_seq: Count
    """Per-loop sequence (1, 2, 3...): a consumer seeing 5 after 3 knows 4 is missing or late."""
    card: Ident
    part: Text40
    quantity: Annotated[int, Field(gt=0, le=1_000_000)]
    station: Ident
    point_of_use: Text200
    source: Ident
    raised_at: TimestampText
    due_at: TimestampText
    attempt: Annotated[Count, Field(ge=1)]
    """1 for the first publish, then 2, 3... (information only; never dedupe by it)."""
    expedite: bool = False
    """True for a red card's request: the line is drawing on a critical loop's contingency reserve,
    serve it before others. Left out otherwise."""


class RequestCancelMessage(Message):
    """A request cancelled at its source: a team lead re-routed its loop to the second source.

    Topic `kanban/v1/{site}/{line}/requests` (beside the requests; `type` tells them apart). Re-sent
    until upstream answers a status `cancelled` for `id`; upstream must stop serving the request and
    answer a cancel of a request it never saw the same way (and ignore that request if it comes later).
    """

    v: Version
    type: Literal["cancel"]
    id: Uuid
    """The request being cancelled (its idempotency key)."""
    site: Ident
    line: Ident
    terminal: Ident
    loop: Ident
    card: Ident
    source: Ident
    """The source the request is cancelled at."""
    reason: Text200
    replaced_by: Uuid | None = Field(None, json_schema_extra=leave_out)
    """The request raised at the second source in the same transaction."""
    cancelled_at: TimestampText
    attempt: Annotated[Count, Field(ge=1)]
