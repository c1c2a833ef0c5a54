"""The kanban card lifecycle: which state a card is in and which events may move it.

    in use --bin empty--> empty --request raised--> queued --sent--> sent
      ^                     ^                                          |
      |                     +------- rejected upstream ---------------+ (from any open state)
      +------------------------ delivered ---------- accepted / picked / shipped
    any circulating state --suspended--> suspended --resumed--> in use
    any circulating state --flagged lost--> lost --found--> in use
    open state --delayed / at risk--> the same state (upstream's warning: an annotation, never a move)
    open state --re-routed--> queued (cancelled at its source, raised again at the second source)
    in use --short delivered--> queued (the shortfall is requested on the same card)
    in use --delivered damaged--> in use (recorded on the delivery; a quality call is raised)

A card has an open replenishment request exactly while it is in one of `OPEN_REQUEST_STATES`; that is
how the core guarantees a card never has two open requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CardState(StrEnum):
    """Where a kanban card is in its loop."""

    IN_USE = "in_use"
    EMPTY = "empty"
    QUEUED = "queued"
    SENT = "sent"
    ACCEPTED = "accepted"
    PICKED = "picked"
    SHIPPED = "shipped"
    SUSPENDED = "suspended"
    LOST = "lost"


class CardEvent(StrEnum):
    """Something that happened to a card; each one is a row in the card log."""

    BIN_EMPTY = "bin_empty"
    REQUEST_RAISED = "request_raised"
    REQUEST_SENT = "request_sent"
    ACCEPTED = "accepted"
    PICKED = "picked"
    SHIPPED = "shipped"
    REJECTED_UPSTREAM = "rejected_upstream"
    DELIVERED = "delivered"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    FLAGGED_LOST = "flagged_lost"
    FOUND = "found"
    DELAYED = "delayed"
    AT_RISK = "at_risk"
    RE_ROUTED = "re_routed"
    SHORT_DELIVERED = "short_delivered"
    DELIVERED_DAMAGED = "delivered_damaged"


ANNOTATIONS = frozenset({CardEvent.DELAYED, CardEvent.AT_RISK})
"""Upstream's warnings about an open request: logged on the card, which stays where it is."""


OPEN_REQUEST_STATES = frozenset(
    {CardState.QUEUED, CardState.SENT, CardState.ACCEPTED, CardState.PICKED, CardState.SHIPPED}
)
CIRCULATING_STATES = OPEN_REQUEST_STATES | {CardState.IN_USE, CardState.EMPTY}

# How far along its way an open request is; upstream statuses only ever move a card forward.
PROGRESS: dict[CardState, int] = {
    CardState.QUEUED: 0,
    CardState.SENT: 1,
    CardState.ACCEPTED: 2,
    CardState.PICKED: 3,
    CardState.SHIPPED: 4,
}

_PROGRESS_EVENTS = {
    CardEvent.REQUEST_SENT: CardState.SENT,
    CardEvent.ACCEPTED: CardState.ACCEPTED,
    CardEvent.PICKED: CardState.PICKED,
    CardEvent.SHIPPED: CardState.SHIPPED,
}

# The words the floor uses for each state: shown on screen instead of the codes above.
FLOOR_WORDS: dict[CardState, str] = {
    CardState.IN_USE: "In use",
    CardState.EMPTY: "Bin empty",
    CardState.QUEUED: "Refill requested",
    CardState.SENT: "Request sent",
    CardState.ACCEPTED: "Accepted",
    CardState.PICKED: "Being picked",
    CardState.SHIPPED: "On its way",
    CardState.SUSPENDED: "Out of circulation",
    CardState.LOST: "Missing",
}


@dataclass(frozen=True)
class Rejection:
    """A refused action, with a machine-readable reason and a message a person can act on."""

    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    """One state change of one card: exactly one card-log row."""

    card_id: str
    event: CardEvent
    from_state: CardState
    to_state: CardState
    at: datetime


def next_state(state: CardState, event: CardEvent) -> CardState | Rejection:
    """Return the state `event` moves a card in `state` to, or a Rejection saying why it cannot."""
    target = _next_state(state, event)
    if target is None:
        return Rejection(
            "illegal_transition",
            f"Cannot record '{event.value.replace('_', ' ')}' for a card that is '{FLOOR_WORDS[state]}'.",
        )
    return target


def _next_state(state: CardState, event: CardEvent) -> CardState | None:
    if event is CardEvent.BIN_EMPTY:
        return CardState.EMPTY if state is CardState.IN_USE else None
    if event is CardEvent.REQUEST_RAISED:
        return CardState.QUEUED if state is CardState.EMPTY else None
    if event in _PROGRESS_EVENTS:
        target = _PROGRESS_EVENTS[event]
        if state in OPEN_REQUEST_STATES and PROGRESS[target] > PROGRESS[state]:
            return target
        return None
    if event in (CardEvent.DELIVERED, CardEvent.REJECTED_UPSTREAM):
        if state not in OPEN_REQUEST_STATES:
            return None
        return CardState.IN_USE if event is CardEvent.DELIVERED else CardState.EMPTY
    if event is CardEvent.SUSPENDED:
        return CardState.SUSPENDED if state in CIRCULATING_STATES else None
    if event is CardEvent.RESUMED:
        return CardState.IN_USE if state is CardState.SUSPENDED else None
    if event is CardEvent.FLAGGED_LOST:
        return CardState.LOST if state in CIRCULATING_STATES else None
    if event is CardEvent.FOUND:
        return CardState.IN_USE if state is CardState.LOST else None
    if event in ANNOTATIONS:
        return state if state in OPEN_REQUEST_STATES else None
    if event is CardEvent.RE_ROUTED:
        return CardState.QUEUED if state in OPEN_REQUEST_STATES else None
    if event is CardEvent.SHORT_DELIVERED:
        return CardState.QUEUED if state is CardState.IN_USE else None
    if event is CardEvent.DELIVERED_DAMAGED:
        return CardState.IN_USE if state is CardState.IN_USE else None
    return None


def transition(card_id: str, state: CardState, event: CardEvent, at: datetime) -> Transition | Rejection:
    """Return the Transition for `event` on a card in `state`, or the Rejection."""
    target = next_state(state, event)
    if isinstance(target, Rejection):
        return target
    return Transition(card_id, event, state, target, at)
