"""What a validated message from outside says, as plain values the use cases take.

The wire schema (adapters/wire) turns bytes from the broker into these, or into a `Refusal`; the
services never see a payload, a dict or a JSON type. Nothing here validates or parses: by the time a
value of this module exists, its message has passed the schema and the configuration checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.scans import Intent

_KINDS = {"empty": Intent.EMPTY, "full": Intent.FULL}


@dataclass(frozen=True)
class BinSignal:
    """A validated bin signal: a sensor saw its bin run empty (or be refilled)."""

    id: str
    device: str
    boot: str
    seq: int
    kind: str
    """"empty" or "full"."""
    at: datetime
    bin: str | None = None
    """Which bin, for a device that watches several (the bridge's multi-sensor boards)."""
    short: int = 0
    """A full bin's missing parts, from a sensor that weighs or counts (0: in full or unknown)."""

    @property
    def intent(self) -> Intent:
        return _KINDS[self.kind]


@dataclass(frozen=True)
class AndonSignal:
    """A validated andon button press from a device."""

    id: str
    """`<device>:<boot>:<seq>`: the key a second copy (QoS 1 redelivery) is recognised by."""
    device: str
    boot: str
    seq: int
    type: str
    """andon_call, andon_stop or andon_cancel, as the device sent it (kept in `andon_signal`)."""
    station: str
    reason: str = ""
    """A configured reason code; empty only for a cancel."""
    at: datetime | None = None
    """When the device saw the press, if it said."""

    @property
    def kind(self) -> AndonKind | None:
        """CALL or STOP to raise; None for a cancel."""
        return {"andon_call": AndonKind.CALL, "andon_stop": AndonKind.STOP}.get(self.type)


@dataclass(frozen=True)
class UpstreamStatus:
    """A validated status message from upstream about one of the terminal's requests."""

    id: str
    request_id: str
    status: str
    """accepted, picked, shipped or rejected; delayed or at_risk (a warning, issue 18); cancelled
    (upstream confirms a request cancel)."""
    at: datetime
    eta: datetime | None = None
    reason: str = ""
    by: str = ""


@dataclass(frozen=True)
class Refusal:
    """An inbound message the terminal will not act on, with the words to keep it by.

    Every field is escaped already: safe to store, log and show.
    """

    door: str
    """Where it came in: `mqtt:device/<id>`, `mqtt:status`, `mqtt:<topic>` for anything else."""
    input: str
    """The payload as received, escaped and cut to a readable length."""
    reason: str
    device: str = "?"
    """The device the topic names, for the screen's warning ("?" when the topic names none)."""
