"""The andon lifecycle, escalation tiers and lockout rules as pure functions, with a fixed clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.andon import Andon, AndonKind, AndonState, LineCondition, ReasonRule
from kanban_terminal.domain.auth import (
    CredentialState,
    LockoutPolicy,
    SessionState,
    after_failure,
    after_success,
    check_attempt,
    lockout_delay,
    session_expired,
    validate_pin,
)
from kanban_terminal.domain.cards import Rejection
from tests.support.andon import T0

QUAL = ReasonRule("QUAL", "Quality problem", ("call", "stop"), (timedelta(0), timedelta(minutes=5)))
SAFE = ReasonRule("SAFE", "Safety", ("stop",), (timedelta(0),))
MIN = timedelta(minutes=1)


def raise_(
    kind: AndonKind = AndonKind.CALL, reason: ReasonRule | None = QUAL, **kw: object
) -> Andon | Rejection:
    args: dict[str, object] = dict(
        andon_id="a1", kind=kind, station="ST10", reason=reason, reason_code=reason.code if reason else "X",
        stations=["ST10", "ST20"], active=[], at=T0, source="keyboard", raised_by=None, authorised=False,
    )  # fmt: skip
    args.update(kw)
    return rules.decide_raise(**args)  # type: ignore[arg-type]


def call() -> Andon:
    a = raise_()
    assert isinstance(a, Andon)
    return a


def test_call_lifecycle_raised_acknowledged_resolved() -> None:
    a = call()
    assert a.state is AndonState.RAISED and a.active and not a.acknowledged
    a = rules.acknowledge(a, "E2001", T0 + MIN)
    assert isinstance(a, Andon) and a.state is AndonState.ACKNOWLEDGED
    a = rules.resolve(a, "E2001", " replaced gauge ", T0 + 3 * MIN, authorised=False)
    assert isinstance(a, Andon) and a.state is AndonState.CLOSED and a.note == "replaced gauge"


def test_resolved_before_acknowledged_still_waits_for_acknowledgement() -> None:
    a = rules.resolve(call(), None, "fixed it myself", T0 + MIN, authorised=False)
    assert isinstance(a, Andon)
    assert a.state is AndonState.RESOLVED_UNACKNOWLEDGED and a.needs_attention and not a.active
    a = rules.acknowledge(a, "E3001", T0 + 2 * MIN)
    assert isinstance(a, Andon) and a.state is AndonState.CLOSED and not a.needs_attention


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: rules.acknowledge(a, "", T0), "needs_responder"),
        (lambda a: rules.resolve(a, "E2001", "  ", T0, authorised=True), "needs_note"),
        (lambda a: rules.cancel(a, None, "mqtt:other", T0, authorised=False), "not_raiser"),
    ],
)
def test_refusals_say_why(change, reason) -> None:  # type: ignore[no-untyped-def]
    result = change(call())
    assert isinstance(result, Rejection) and result.reason == reason and result.message


def test_raiser_may_cancel_an_unacknowledged_call_but_not_an_acknowledged_one() -> None:
    cancelled = rules.cancel(call(), None, "keyboard", T0 + MIN, authorised=False)
    assert isinstance(cancelled, Andon) and cancelled.state is AndonState.CANCELLED
    taken = rules.acknowledge(call(), "E2001", T0 + MIN)
    assert isinstance(taken, Andon)
    refused = rules.cancel(taken, None, "keyboard", T0 + MIN, authorised=False)
    assert isinstance(refused, Rejection) and refused.reason == "already_acknowledged"


def test_stop_needs_authority_to_raise_and_resolve_and_cannot_be_cancelled() -> None:
    refused = raise_(AndonKind.STOP)
    assert isinstance(refused, Rejection) and refused.reason == "needs_team_lead"
    stop = raise_(AndonKind.STOP, authorised=True)
    assert isinstance(stop, Andon)
    assert isinstance(rules.resolve(stop, "E1001", "ok", T0, authorised=False), Rejection)
    assert isinstance(rules.cancel(stop, None, "keyboard", T0, authorised=True), Rejection)
    done = rules.resolve(stop, "E2001", "guard refitted", T0 + 7 * MIN, authorised=True)
    assert isinstance(done, Andon) and done.downtime(T0 + 60 * MIN) == 7 * MIN


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"station": "ST99"}, "unknown_station"),
        ({"reason": None, "reason_code": "NOPE"}, "unknown_reason"),
        ({"reason": SAFE}, "reason_not_for_kind"),
    ],
)
def test_raise_validation(kw: dict[str, object], reason: str) -> None:
    result = raise_(**kw)
    assert isinstance(result, Rejection) and result.reason == reason


def test_duplicate_active_call_is_refused_but_another_card_is_not() -> None:
    first = call()
    again = raise_(active=[first])
    assert isinstance(again, Rejection) and again.reason == "already_active"
    assert isinstance(raise_(active=[first], card_id="B1001X"), Andon)


def test_line_condition_stop_wins_and_resolved_events_do_not_stop() -> None:
    stop = raise_(AndonKind.STOP, authorised=True)
    assert isinstance(stop, Andon)
    assert rules.line_condition([]) is LineCondition.RUNNING
    assert rules.line_condition([call()]) is LineCondition.CALL
    assert rules.line_condition([call(), stop]) is LineCondition.STOPPED
    resolved = rules.resolve(stop, "E2001", "ok", T0, authorised=True)
    assert isinstance(resolved, Andon)
    assert rules.line_condition([resolved]) is LineCondition.RUNNING


def test_shelve_is_bounded() -> None:
    limit = timedelta(minutes=60)
    assert isinstance(rules.decide_shelve("BTN", 30 * MIN, limit, T0, authorised=False), Rejection)
    too_long = rules.decide_shelve("BTN", 61 * MIN, limit, T0, authorised=True)
    assert isinstance(too_long, Rejection) and too_long.reason == "too_long"
    ok = rules.decide_shelve("BTN", 30 * MIN, limit, T0, authorised=True)
    assert isinstance(ok, rules.Shelve) and ok.until == T0 + 30 * MIN


TIERS = (timedelta(0), 5 * MIN, 15 * MIN)


@pytest.mark.parametrize(
    ("elapsed", "acked", "fired", "due"),
    [
        (timedelta(0), False, (), [0]),
        (4 * MIN, False, (0,), []),
        (5 * MIN, False, (0,), [1]),
        (20 * MIN, False, (0,), [1, 2]),  # a late tick fires every passed tier: none is skipped
        (20 * MIN, False, (0, 1, 2), []),  # never twice
        (20 * MIN, True, (0,), []),  # acknowledgement ends escalation
        (-60 * MIN, False, (0,), []),  # clock behind the raise: nothing due, nothing re-fired
    ],
)
def test_tiers_due(elapsed: timedelta, acked: bool, fired: tuple[int, ...], due: list[int]) -> None:
    assert rules.tiers_due(elapsed, acked, TIERS, fired) == due
    assert rules.due_tiers(T0, acked, TIERS, T0 + elapsed, fired) == due


def test_lockout_after_five_failures_with_growing_delay() -> None:
    policy = LockoutPolicy()
    state = CredentialState("E2001")
    for _ in range(4):
        state = after_failure(state, T0, policy)
        assert check_attempt(state, T0) is None
    state = after_failure(state, T0, policy)
    refused = check_attempt(state, T0)
    assert isinstance(refused, Rejection) and refused.reason == "locked_out"
    assert check_attempt(state, T0 + timedelta(seconds=30)) is None
    assert [lockout_delay(n, policy).total_seconds() for n in (4, 5, 6, 7)] == [0, 30, 60, 120]
    assert lockout_delay(40, policy) == timedelta(minutes=15)
    assert after_success(state).failures == 0


def test_badge_blocked_after_the_nist_limit() -> None:
    policy = LockoutPolicy(failures_before_block=10)
    state = CredentialState("E2001", failures=9)
    state = after_failure(state, T0, policy)
    refused = check_attempt(state, T0 + timedelta(days=1))
    assert isinstance(refused, Rejection) and refused.reason == "blocked"


def test_session_idle_timeout_and_backwards_clock() -> None:
    s = SessionState("E2001", "Kim", "team_lead", T0)
    idle = timedelta(minutes=5)
    assert not session_expired(s, T0 + 4 * MIN, idle)
    assert session_expired(s, T0 + 5 * MIN, idle)
    assert session_expired(s, T0 - timedelta(hours=1), idle)


@pytest.mark.parametrize("pin", ["12", "abcd", "1111", "1234", "4321", "1234567890123"])
def test_weak_or_malformed_pins_refused(pin: str) -> None:
    assert validate_pin(pin) is not None


def test_good_pin_accepted() -> None:
    assert validate_pin("4711") is None
