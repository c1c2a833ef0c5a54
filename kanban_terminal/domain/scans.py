"""What one scan (or one bin signal) of a known card should do, decided from the card's state.

An operator has one gesture: scan the card. The core turns it into the right thing: a card in use
becomes empty and raises a request; a card whose request is open is delivered and its real lead time
measured. Guard rails catch what goes wrong on a floor: a scanner re-reading the same label, a
"delivered" scan seconds after the request (the wrong card, or the wrong bin), a suspended card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from kanban_terminal.domain.cards import (
    FLOOR_WORDS,
    OPEN_REQUEST_STATES,
    CardEvent,
    CardState,
    Rejection,
    Transition,
    transition,
)


class Intent(StrEnum):
    """What the input claims about the bin."""

    AUTO = "auto"  # an operator's scan: the card's state decides
    EMPTY = "empty"  # a bin sensor saying the bin ran empty
    FULL = "full"  # a bin sensor saying a full bin arrived


class Verdict(StrEnum):
    """How the outcome is shown: green, amber or red."""

    ACCEPTED = "accepted"
    WARNING = "warning"
    REJECTED = "rejected"


class OutcomeKind(StrEnum):
    """What a scan did, for callers that branch on it (CLI exit codes, TUI confirmations)."""

    REQUEST_RAISED = "request_raised"
    DELIVERED = "delivered"
    FOUND = "found"
    DEBOUNCED = "debounced"
    ALREADY_REQUESTED = "already_requested"
    NEEDS_CONFIRMATION = "needs_confirmation"
    NOT_ALLOWED = "not_allowed"
    UNKNOWN_CARD = "unknown_card"
    MISREAD = "misread"
    FAILED = "failed"


@dataclass(frozen=True)
class ScanPolicy:
    """Guard-rail settings of a terminal."""

    debounce: timedelta = timedelta(seconds=3)


@dataclass(frozen=True)
class OpenRequest:
    """The open replenishment request of a card, as far as a scan decision needs it."""

    request_id: str
    raised_at: datetime


@dataclass(frozen=True)
class CardSnapshot:
    """A card's current state as stored."""

    card_id: str
    state: CardState
    last_scan_at: datetime | None = None
    open_request: OpenRequest | None = None


@dataclass(frozen=True)
class LoopTerms:
    """The parts of a loop's configuration that scan decisions use."""

    planned_lead_time: timedelta
    min_plausible_lead_time: timedelta


@dataclass(frozen=True)
class ScanDecision:
    """The decision for one scan: what to show and what to write."""

    verdict: Verdict
    kind: OutcomeKind
    message: str
    transitions: tuple[Transition, ...] = ()
    raise_request: bool = False
    delivered_request_id: str | None = None
    lead_time: timedelta | None = None
    rejection: Rejection | None = field(default=None)

    @property
    def changes_state(self) -> bool:
        """True when the decision writes anything."""
        return bool(self.transitions)


def whole_seconds(delta: timedelta) -> int:
    """A duration in whole seconds, rounded half up: the one rounding the banner and the card log
    share (the banner truncated 24.6 s to "24 s" while the log rounded it to "25 s")."""
    return math.floor(delta.total_seconds() + 0.5)


def _ago(delta: timedelta) -> str:
    seconds = max(0, whole_seconds(delta))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _refused(
    kind: OutcomeKind, reason: str, message: str, verdict: Verdict = Verdict.REJECTED
) -> ScanDecision:
    return ScanDecision(verdict, kind, message, rejection=Rejection(reason, message))


def decide_scan(
    card: CardSnapshot,
    terms: LoopTerms,
    now: datetime,
    *,
    intent: Intent = Intent.AUTO,
    confirmed: bool = False,
    policy: ScanPolicy = ScanPolicy(),
) -> ScanDecision:
    """Decide what a scan of `card` at `now` does.

    Args:
        card: the card's stored state.
        terms: the loop's lead-time settings.
        now: when the scan happened (the event time, not the time it is recorded).
        intent: AUTO for an operator's scan; EMPTY or FULL for a bin sensor's signal.
        confirmed: the person confirmed an implausibly early delivery.
        policy: debounce and other guard rails.

    Returns:
        The decision; it carries the transitions to log, in order, when it changes anything.
    """
    if card.last_scan_at is not None and timedelta(0) <= now - card.last_scan_at < policy.debounce:
        return _refused(
            OutcomeKind.DEBOUNCED,
            "debounced",
            f"Card {card.card_id} was just scanned {_ago(now - card.last_scan_at)} ago; "
            "this repeat read is ignored.",
            Verdict.WARNING,
        )
    state = card.state
    if state is CardState.SUSPENDED:
        return _refused(
            OutcomeKind.NOT_ALLOWED,
            "suspended",
            f"Card {card.card_id} is out of circulation. Hand it to the team lead.",
        )
    if state is CardState.LOST:
        found = transition(card.card_id, state, CardEvent.FOUND, now)
        assert isinstance(found, Transition)
        return ScanDecision(
            Verdict.WARNING,
            OutcomeKind.FOUND,
            f"Card {card.card_id} was listed as missing: it is found and back in use. "
            "If its bin is empty, scan it again.",
            transitions=(found,),
        )
    if state in (CardState.IN_USE, CardState.EMPTY):
        if intent is Intent.FULL:
            return _refused(
                OutcomeKind.NOT_ALLOWED,
                "no_open_request",
                f"A full bin was reported for card {card.card_id}, but no refill was requested.",
                Verdict.WARNING,
            )
        return _raise(card, now)
    # An open request: the card came back with a full bin, unless a sensor says the bin is empty.
    assert state in OPEN_REQUEST_STATES and card.open_request is not None
    request = card.open_request
    if intent is Intent.EMPTY:
        return _refused(
            OutcomeKind.ALREADY_REQUESTED,
            "already_requested",
            f"Refill for card {card.card_id} was already requested {_ago(now - request.raised_at)} ago "
            f"({FLOOR_WORDS[state]}).",
            Verdict.WARNING,
        )
    lead_time = now - request.raised_at
    if lead_time < terms.min_plausible_lead_time and not confirmed:
        return _refused(
            OutcomeKind.NEEDS_CONFIRMATION,
            "implausibly_early",
            f"Card {card.card_id}: the refill was requested only {_ago(lead_time)} ago. "
            "Did the full bin really arrive? Confirm to record the delivery.",
            Verdict.WARNING,
        )
    delivered = transition(card.card_id, state, CardEvent.DELIVERED, now)
    assert isinstance(delivered, Transition)
    late = lead_time - terms.planned_lead_time
    lateness = f", {_ago(late)} late" if late > timedelta(0) else ""
    return ScanDecision(
        Verdict.ACCEPTED,
        OutcomeKind.DELIVERED,
        f"Delivered. Card {card.card_id} back in use after {_ago(lead_time)}{lateness}.",
        transitions=(delivered,),
        delivered_request_id=request.request_id,
        lead_time=lead_time,
    )


def _raise(card: CardSnapshot, now: datetime) -> ScanDecision:
    steps: list[Transition] = []
    state = card.state
    if state is CardState.IN_USE:
        empty = transition(card.card_id, state, CardEvent.BIN_EMPTY, now)
        assert isinstance(empty, Transition)
        steps.append(empty)
        state = empty.to_state
    raised = transition(card.card_id, state, CardEvent.REQUEST_RAISED, now)
    assert isinstance(raised, Transition)
    steps.append(raised)
    return ScanDecision(
        Verdict.ACCEPTED,
        OutcomeKind.REQUEST_RAISED,
        f"Bin empty. Refill requested for card {card.card_id}.",
        transitions=tuple(steps),
        raise_request=True,
    )
