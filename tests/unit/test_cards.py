from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kanban_terminal.domain.cards import (
    OPEN_REQUEST_STATES,
    CardEvent,
    CardState,
    Rejection,
    Transition,
    next_state,
    transition,
)

S, E = CardState, CardEvent
AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (S.IN_USE, E.BIN_EMPTY, S.EMPTY),
        (S.EMPTY, E.REQUEST_RAISED, S.QUEUED),
        (S.QUEUED, E.REQUEST_SENT, S.SENT),
        (S.QUEUED, E.ACCEPTED, S.ACCEPTED),  # upstream may answer before our PUBACK is seen
        (S.SENT, E.ACCEPTED, S.ACCEPTED),
        (S.ACCEPTED, E.PICKED, S.PICKED),
        (S.PICKED, E.SHIPPED, S.SHIPPED),
        (S.SHIPPED, E.DELIVERED, S.IN_USE),
        (S.SENT, E.DELIVERED, S.IN_USE),
        (S.SENT, E.REJECTED_UPSTREAM, S.EMPTY),
        (S.IN_USE, E.SUSPENDED, S.SUSPENDED),
        (S.SUSPENDED, E.RESUMED, S.IN_USE),
        (S.IN_USE, E.FLAGGED_LOST, S.LOST),
        (S.LOST, E.FOUND, S.IN_USE),
    ],
)
def test_allowed_transitions(state: CardState, event: CardEvent, expected: CardState) -> None:
    assert next_state(state, event) is expected


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (S.IN_USE, E.DELIVERED),
        (S.EMPTY, E.BIN_EMPTY),
        (S.QUEUED, E.REQUEST_RAISED),  # never a second open request
        (S.SHIPPED, E.ACCEPTED),  # an older status never moves a card backwards
        (S.PICKED, E.PICKED),
        (S.SUSPENDED, E.BIN_EMPTY),
        (S.LOST, E.DELIVERED),
        (S.IN_USE, E.RESUMED),
    ],
)
def test_illegal_transitions_are_reasoned_rejections(state: CardState, event: CardEvent) -> None:
    result = transition("B1001Z", state, event, AT)
    assert isinstance(result, Rejection)
    assert result.reason == "illegal_transition"
    assert "Cannot record" in result.message


def test_every_state_event_pair_is_decided() -> None:
    for state in CardState:
        for event in CardEvent:
            result = transition("C", state, event, AT)
            assert isinstance(result, Transition | Rejection)
            if isinstance(result, Transition) and event is E.REQUEST_RAISED:
                assert state not in OPEN_REQUEST_STATES
