"""The runway of a loop (domain/runway.py) on histories whose answer is known by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kanban_terminal.domain.runway import (
    Arrival,
    LoopSupply,
    RunwaySettings,
    WarningStep,
    assess,
    consumption_rate,
    planned_rate_per_h,
    run_out,
    warning_step,
)
from kanban_terminal.domain.sizing import LoopHistory, recommend_reserve

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SETTINGS = RunwaySettings()
H = timedelta(hours=1)


def supply(
    on_hand: int, arrivals: tuple[Arrival, ...] = (), empties: tuple[datetime, ...] = ()
) -> LoopSupply:
    # 100 parts a bin, planned 50 parts/h, planned lead time 2 h.
    return LoopSupply("L1", 100, on_hand, empties, arrivals, 50.0, 2 * H)


def test_a_steady_pace_over_the_shift_is_measured() -> None:
    empties = [NOW - timedelta(minutes=30 * i) for i in range(8, -1, -1)]  # a bin every 30 min
    assert consumption_rate(empties, NOW, SETTINGS) == pytest.approx(2.0)


def test_a_spike_in_the_last_bins_counts_at_once() -> None:
    steady = [NOW - 4 * H + timedelta(hours=i) for i in range(4)]  # a bin an hour...
    spike = [NOW - timedelta(minutes=m) for m in (30, 20, 10, 0)]  # ...then one every 10 min
    rate = consumption_rate(sorted(steady + spike), NOW, SETTINGS)
    assert rate == pytest.approx(6.0, rel=0.01)


@pytest.mark.parametrize("count", [0, 1])
def test_too_few_empties_in_the_window_say_nothing(count: int) -> None:
    empties = [NOW - timedelta(minutes=10 * i) for i in range(count)]
    old = [NOW - 20 * H, NOW - 19 * H, NOW - 18 * H]  # outside the 8 h window
    assert consumption_rate(sorted(old + empties), NOW, SETTINGS) is None


def test_runway_adds_refills_that_come_before_the_run_out() -> None:
    # 100 parts at 50/h: 2 h alone; a 100-part refill after 1 h makes it 4 h.
    dry, promised = run_out(NOW, 100, 50, [Arrival(NOW + H, 100)])
    assert dry == NOW + 4 * H
    assert promised == 100


def test_a_refill_promised_after_the_run_out_does_not_save_the_line() -> None:
    dry, _ = run_out(NOW, 100, 50, [Arrival(NOW + 3 * H, 500)])
    assert dry == NOW + 2 * H


def test_a_broken_promise_is_not_counted() -> None:
    dry, promised = run_out(NOW, 100, 50, [Arrival(NOW - H, 100)])
    assert dry == NOW + 2 * H
    assert promised == 0


def test_planned_rate_is_the_sizing_formula_solved_for_demand() -> None:
    # N = 3, C = 500, L = 4 h, S = 0.2: (3 - 1) x 500 / (4 x 1.2) = 208.3 parts/h.
    assert planned_rate_per_h(3, 500, 4 * H, 0.2) == pytest.approx(208.333, rel=1e-4)


def test_a_loop_with_its_refill_on_time_is_not_at_risk() -> None:
    # Two full bins (the one in use was just started) and a refill due in 2 h: 200 + 100 at 50/h.
    got = assess(supply(2, (Arrival(NOW + 2 * H, 100),), (NOW,)), NOW, SETTINGS)
    assert got.runway == 6 * H
    assert not got.at_risk
    assert not got.measured


def test_a_delayed_eta_puts_the_loop_at_risk() -> None:
    # One bin half used (no empty known), its refill now only in 5 h: dry in 1 h < 2 h margin.
    got = assess(supply(1, (Arrival(NOW + 5 * H, 100),)), NOW, SETTINGS)
    assert got.runway == H
    assert got.at_risk


def test_no_card_in_use_means_dry_now() -> None:
    got = assess(supply(0), NOW, SETTINGS)
    assert got.runway == timedelta(0)
    assert got.at_risk


def test_warning_raises_once_and_clears_only_past_the_deadband() -> None:
    at_risk = assess(supply(1, (Arrival(NOW + 5 * H, 100),)), NOW, SETTINGS)
    assert warning_step(at_risk, False, SETTINGS) is WarningStep.RAISE
    assert warning_step(at_risk, True, SETTINGS) is WarningStep.KEEP  # once per episode
    # Half a bin (50) and 60 parts in 30 min at 50/h: 2.2 h, past the 10 % deadband (2.2 h): clear.
    just_above = assess(supply(1, (Arrival(NOW + 0.5 * H, 60),)), NOW, SETTINGS)
    assert just_above.runway == 2.2 * H
    assert not just_above.at_risk
    assert warning_step(just_above, True, SETTINGS) is WarningStep.CLEAR
    # 2.1 h: above the 2 h margin, not at risk, but inside the deadband: the warning stays.
    inside = assess(supply(1, (Arrival(NOW + 0.5 * H, 55),)), NOW, SETTINGS)
    assert 2 * H <= inside.runway < 2.2 * H  # type: ignore[operator]
    assert warning_step(inside, True, SETTINGS) is WarningStep.KEEP
    assert warning_step(inside, False, SETTINGS) is WarningStep.KEEP


def test_reserve_advice_covers_the_late_refill_and_replays_the_stoppages_it_avoids() -> None:
    t0 = datetime(2026, 3, 2, 6, tzinfo=UTC)
    empties = tuple(t0 + timedelta(minutes=30 * i) for i in range(40))
    # Refills take 1 h, except every tenth, which takes 3 h (the truck that did not come).
    leads = tuple(3 * 3600.0 if i % 10 == 9 else 3600.0 for i in range(36))
    h = LoopHistory("L1", 10, 3, 3600, empties, leads, empties[:36], "supplier")
    advice = recommend_reserve(h, scan_delay_s=0)
    assert advice is not None
    assert advice.bins >= 1
    assert advice.without.stockouts > 0
    assert advice.with_reserve.stockouts < advice.without.stockouts
