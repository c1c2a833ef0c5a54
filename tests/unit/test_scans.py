"""Scan decisions, including property tests over arbitrary scan sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kanban_terminal.domain.cards import OPEN_REQUEST_STATES, CardEvent, CardState
from kanban_terminal.domain.scans import (
    CardSnapshot,
    Intent,
    LoopTerms,
    OpenRequest,
    OutcomeKind,
    Verdict,
    decide_scan,
)

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
TERMS = LoopTerms(planned_lead_time=timedelta(minutes=60), min_plausible_lead_time=timedelta(minutes=6))


def card(state: CardState, **kw: object) -> CardSnapshot:
    return CardSnapshot("B1001Z", state, **kw)  # type: ignore[arg-type]


def test_scan_of_card_in_use_empties_it_and_raises_a_request() -> None:
    d = decide_scan(card(CardState.IN_USE), TERMS, T0)
    assert (d.verdict, d.kind, d.raise_request) == (Verdict.ACCEPTED, OutcomeKind.REQUEST_RAISED, True)
    assert [t.event for t in d.transitions] == [CardEvent.BIN_EMPTY, CardEvent.REQUEST_RAISED]
    assert d.transitions[-1].to_state is CardState.QUEUED


def test_scan_of_card_with_open_request_delivers_and_measures_lead_time() -> None:
    raised = T0 - timedelta(minutes=75)
    d = decide_scan(card(CardState.SHIPPED, open_request=OpenRequest("r1", raised)), TERMS, T0)
    assert d.kind is OutcomeKind.DELIVERED
    assert d.lead_time == timedelta(minutes=75)
    assert d.delivered_request_id == "r1"
    assert "15 min late" in d.message


def test_repeat_scan_within_debounce_is_ignored_and_says_so() -> None:
    d = decide_scan(card(CardState.QUEUED, last_scan_at=T0 - timedelta(seconds=2)), TERMS, T0)
    assert (d.kind, d.verdict, d.changes_state) == (OutcomeKind.DEBOUNCED, Verdict.WARNING, False)
    assert "ignored" in d.message


def test_delivery_implausibly_soon_needs_confirmation_then_goes_through() -> None:
    snap = card(CardState.SENT, open_request=OpenRequest("r1", T0 - timedelta(minutes=2)))
    d = decide_scan(snap, TERMS, T0)
    assert d.kind is OutcomeKind.NEEDS_CONFIRMATION and not d.changes_state
    d = decide_scan(snap, TERMS, T0, confirmed=True)
    assert d.kind is OutcomeKind.DELIVERED


def test_suspended_card_is_refused_with_what_to_do() -> None:
    d = decide_scan(card(CardState.SUSPENDED), TERMS, T0)
    assert d.verdict is Verdict.REJECTED and "team lead" in d.message


def test_sensor_empty_on_requested_card_does_not_deliver_it() -> None:
    snap = card(CardState.SENT, open_request=OpenRequest("r1", T0 - timedelta(hours=2)))
    d = decide_scan(snap, TERMS, T0, intent=Intent.EMPTY)
    assert d.kind is OutcomeKind.ALREADY_REQUESTED and not d.changes_state


def test_sensor_full_without_request_changes_nothing() -> None:
    d = decide_scan(card(CardState.IN_USE), TERMS, T0, intent=Intent.FULL)
    assert not d.changes_state and d.verdict is Verdict.WARNING


def test_lost_card_scanned_is_found() -> None:
    d = decide_scan(card(CardState.LOST), TERMS, T0)
    assert d.kind is OutcomeKind.FOUND and d.transitions[0].to_state is CardState.IN_USE


# A model of the card the way the service stores it, driven by arbitrary scans.
steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=7200),  # seconds since previous scan
        st.sampled_from(list(Intent)),
        st.booleans(),  # confirmed
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_no_scan_sequence_yields_two_open_requests(
    seq: list[tuple[float, Intent, bool]],
) -> None:
    state, last_scan, request, now = CardState.IN_USE, None, None, T0
    open_requests = 0
    log_rows = 0
    for gap, intent, confirmed in seq:
        now += timedelta(seconds=gap)
        snap = CardSnapshot("C", state, last_scan, request)
        d = decide_scan(snap, TERMS, now, intent=intent, confirmed=confirmed)
        for step in d.transitions:
            assert step.from_state is state  # transitions chain: each starts where the last ended
            state = step.to_state
            log_rows += 1
        if d.raise_request:
            assert request is None
            request = OpenRequest(f"r{log_rows}", now)
            open_requests += 1
        if d.delivered_request_id:
            assert request is not None and d.delivered_request_id == request.request_id
            request = None
            open_requests -= 1
        if d.changes_state:
            last_scan = now
        assert open_requests <= 1
        assert (request is not None) == (state in OPEN_REQUEST_STATES)
