"""Pure rules of issues 17 and 18: warnings annotate, re-routes and shortfalls move, the scorecard's
resilience figures by hand, the config checks and the wire messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kanban_terminal.adapters.wire import RequestCancelMessage, UpstreamStatusMessage, validate
from kanban_terminal.config import ConfigError, parse_config
from kanban_terminal.domain.cards import OPEN_REQUEST_STATES, CardEvent, CardState, Rejection, next_state
from kanban_terminal.domain.metrics import Cycle, source_metrics
from kanban_terminal.domain.scorecard import source_resilience
from kanban_terminal.domain.supply import (
    DeliveryIssue,
    Trouble,
    check_delivery_issue,
    note_trouble,
    reroute_target,
    trouble_text,
)
from tests.support.mqtt_lines import line_config

T = datetime(2026, 3, 2, 6, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


@pytest.mark.parametrize("state", sorted(OPEN_REQUEST_STATES))
@pytest.mark.parametrize("event", [CardEvent.DELAYED, CardEvent.AT_RISK])
def test_a_warning_leaves_an_open_card_where_it_is(state: CardState, event: CardEvent) -> None:
    assert next_state(state, event) is state


@pytest.mark.parametrize("state", [CardState.IN_USE, CardState.EMPTY, CardState.SUSPENDED, CardState.LOST])
def test_a_warning_about_a_card_without_an_open_request_is_refused(state: CardState) -> None:
    assert isinstance(next_state(state, CardEvent.DELAYED), Rejection)
    assert isinstance(next_state(state, CardEvent.RE_ROUTED), Rejection)


@pytest.mark.parametrize("state", sorted(OPEN_REQUEST_STATES))
def test_a_reroute_sends_an_open_card_back_to_queued(state: CardState) -> None:
    assert next_state(state, CardEvent.RE_ROUTED) is CardState.QUEUED


def test_a_shortfall_is_raised_only_on_a_card_just_back_in_use() -> None:
    assert next_state(CardState.IN_USE, CardEvent.SHORT_DELIVERED) is CardState.QUEUED
    assert isinstance(next_state(CardState.SENT, CardEvent.SHORT_DELIVERED), Rejection)
    assert next_state(CardState.IN_USE, CardEvent.DELIVERED_DAMAGED) is CardState.IN_USE


def test_the_first_sign_of_trouble_is_kept() -> None:
    first = note_trouble(Trouble.AT_RISK, at(10), None, "strike", None)
    assert not isinstance(first, Rejection) and first.first_at == at(10)
    later = note_trouble(Trouble.DELAYED, at(30), at(90), "", first.first_at)
    assert not isinstance(later, Rejection) and later.first_at == at(10) and later.eta == at(90)
    assert isinstance(note_trouble(Trouble.DELAYED, at(30), None, "", None), Rejection)
    assert trouble_text("delayed", datetime(2026, 3, 2, 10, 42), "fog") == "Delayed, ETA 10:42: fog"
    assert trouble_text(None, None, None) == ""


def test_reroute_goes_to_the_other_source_and_back() -> None:
    assert reroute_target("SM1", "SM2", "SM1") == "SM2"
    assert reroute_target("SM1", "SM2", "SM2") == "SM1"
    assert isinstance(reroute_target("SM1", None, "SM1"), Rejection)


@pytest.mark.parametrize(
    ("short", "damaged", "ok"),
    [(1, 0, True), (0, 1, True), (4, 6, True), (0, 0, False), (-1, 2, False), (6, 5, False)],
)
def test_delivery_issue_quantities(short: int, damaged: int, ok: bool) -> None:
    result = check_delivery_issue(10, short, damaged)
    assert isinstance(result, DeliveryIssue) is ok


def cycle(raised: float, closed: float | None, status: str = "delivered", **kw: object) -> Cycle:
    return Cycle("L1", "C1", "SUP", at(raised), at(raised + 60), at(closed) if closed is not None else None,
                 status, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_resilience_figures_by_hand() -> None:
    cycles = [
        cycle(0, 30),  # lead 30 min, in full, on time
        cycle(0, 50, short_qty=5),  # lead 50, short: not in full
        cycle(0, 70, trouble_at=at(20)),  # lead 70 (late), delayed at 20 -> delivered at 70: 50 min
        cycle(0, 40, damaged_qty=2),  # lead 40, damaged
        cycle(0, 15, status="rerouted", trouble_at=at(5)),  # re-routed 10 min after the warning
        cycle(0, None, status="sent", trouble_at=at(1)),  # still open, nothing safe yet
        cycle(0, None, status="sent", trouble_at=at(2), safe_at=at(32)),  # reserve drawn 30 min later
    ]
    r = source_resilience("SUP", cycles)
    assert r.deliveries == 4
    assert (r.lead_time_p50_s, r.lead_time_p90_s, r.spread_s) == (40 * 60, 70 * 60, 30 * 60)
    # leads 30, 40, 50, 70 min: mean 47.5, sample sd sqrt(((17.5)^2 + 7.5^2 + 2.5^2 + 22.5^2) / 3)
    assert r.cv == pytest.approx(((17.5**2 + 7.5**2 + 2.5**2 + 22.5**2) / 3) ** 0.5 / 47.5)
    assert (r.in_full_rate, r.short_parts, r.damaged_parts) == (0.5, 5, 2)
    assert (r.rerouted, r.rerouted_share) == (1, 1 / 5)
    assert (r.disruptions, r.open_disruptions) == (4, 1)
    assert r.response_p50_s == 30 * 60 and r.response_max_s == 50 * 60  # 10, 30, 50 min
    # OTIF counts in full: of the 5 closed, only the first is on time and in full.
    assert source_metrics("SUP", cycles).otif_rate == pytest.approx(1 / 5)


TWICE = '[[second_sources]]\nloop = "LP0"\nsource = "SM2"\n' * 2
SECOND = '\n[[sources]]\nid = "SM2"\nkind = "warehouse"\n'


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('[[second_sources]]\nloop = "NOPE"\nsource = "SM2"\n', "second_sources[0].loop: unknown loop"),
        ('[[second_sources]]\nloop = "LP0"\nsource = "XX"\n', "second_sources[0].source: unknown source"),
        ('[[second_sources]]\nloop = "LP0"\nsource = "SM1"\n', "already the loop's own source"),
        (TWICE, "already has a second source"),
        ('[delivery]\ndamage_reason = "QUAL"\n', "unknown andon reason"),
    ],
)
def test_second_source_config_problems_are_named(extra: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(line_config(loops=1, cards=1, sensors=0) + SECOND + extra)
    assert any(problem in f"{p.path}: {p.message}" for p in caught.value.problems), caught.value.problems


def test_a_config_without_quality_reason_stays_valid_with_the_default() -> None:
    cfg = parse_config(line_config(loops=1, cards=1, sensors=0) + SECOND)
    assert cfg.delivery.damage_reason == "QUAL" and cfg.second_sources == ()


STATUS = b'{"v":1,"id":"s1","request_id":"6f1c3a52-4b7e-4c8e-9a51-0d2b8e1f7a10","at":"2026-03-02T06:00:00Z",'


def test_the_wire_takes_warnings_and_refuses_a_delay_without_eta() -> None:
    ok = validate(UpstreamStatusMessage, STATUS + b'"status":"delayed","eta":"2026-03-02T09:00:00Z"}', 2048)
    assert isinstance(ok, UpstreamStatusMessage) and ok.eta is not None
    risk = validate(UpstreamStatusMessage, STATUS + b'"status":"at_risk","reason":"strike"}', 2048)
    assert isinstance(risk, UpstreamStatusMessage)
    no_eta = validate(UpstreamStatusMessage, STATUS + b'"status":"delayed"}', 2048)
    assert no_eta == "a delayed status must give the new eta"
    assert isinstance(validate(UpstreamStatusMessage, STATUS + b'"status":"late"}', 2048), str)


def test_the_cancel_message_is_strict() -> None:
    base = (
        b'{"v":1,"type":"cancel","id":"6f1c3a52-4b7e-4c8e-9a51-0d2b8e1f7a10","site":"S1","line":"L1",'
        b'"terminal":"T1","loop":"LP0","card":"C1","source":"SM1","reason":"re-routed to SM2",'
        b'"cancelled_at":"2026-03-02T06:00:00.000Z","attempt":1'
    )
    assert isinstance(validate(RequestCancelMessage, base + b"}", 4096), RequestCancelMessage)
    assert isinstance(validate(RequestCancelMessage, base + b',"attempt2":1}', 4096), str)
    assert isinstance(validate(RequestCancelMessage, base.replace(b'"C1"', b'"C/1"') + b"}", 4096), str)
