"""What use cases announce on the bus after their transaction has committed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kanban_terminal.domain.scans import OutcomeKind, Verdict


@dataclass(frozen=True)
class ScanOutcome:
    """What one scan did, in words for the person in front of the screen."""

    verdict: Verdict
    kind: OutcomeKind
    message: str
    code: str
    """The code as shown: escaped, never raw input."""
    source: str
    at: datetime
    card_id: str | None = None
    loop_id: str | None = None
    part_number: str | None = None
    part_description: str | None = None
    point_of_use: str | None = None
    request_id: str | None = None
    reserve_drawn: bool = False
    """A red card: the line draws on its reserve, and the message says what to do with the card."""

    @property
    def accepted(self) -> bool:
        return self.verdict.value == "accepted"


@dataclass(frozen=True)
class ScanRecorded:
    """A scan (or bin signal) was handled, whatever the outcome."""

    outcome: ScanOutcome


@dataclass(frozen=True)
class RequestRaised:
    """A replenishment request was committed to the outbox."""

    request_id: str
    loop_id: str


@dataclass(frozen=True)
class CardsChanged:
    """Card states changed: screens showing cards should refresh."""

    card_ids: tuple[str, ...]


@dataclass(frozen=True)
class ScannerStateChanged:
    """A serial scanner's port opened or was lost (published by the runtime's scanner reader)."""

    name: str
    connected: bool
    detail: str


@dataclass(frozen=True)
class HandoverTaken:
    """Bus event after the commit: a shift was taken over; `payload` is the upstream message's body
    (adapters/handover_link.py publishes it as `HandoverMessage`).

    Here, not in services/handover.py (which re-exports it), so the link's publisher can know the
    event without importing the handover use case: `serve` takes no handover itself and saved
    ~0.3 MB of RSS (services.handover, .queries, .auth, domain.handover; issue 19)."""

    payload: dict[str, Any]
