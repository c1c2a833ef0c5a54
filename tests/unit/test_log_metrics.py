"""Loop and source metrics on a small history computed by hand (see the comments for the sums)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kanban_terminal.domain.metrics import (
    Cycle,
    fmt_duration,
    loop_metrics,
    per_day,
    percentile,
    source_metrics,
    sparkline,
    stockouts,
)


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 3, 3, hh, mm, tzinfo=UTC)


def cycle(raised: datetime, closed: datetime | None, status: str = "delivered", card: str = "C1") -> Cycle:
    return Cycle("L1", card, "SM1", raised, raised + timedelta(hours=1), closed, status)


# Loop L1, 2 cards, planned lead time 60 min, now 10:30:
#   c1 08:00 -> 08:50 (50 min, on time)   c2 08:30 -> 09:40 (70 min, 10 min late)
#   c3 09:00 -> open (due 10:00: overdue)  c4 09:45 -> 10:20 (35 min, on time)
# Open requests over time: 2 at once during 08:30-08:50, 09:00-09:40, 09:45-10:20 -> 3 stockouts,
# 20 + 40 + 35 = 95 min.
CYCLES = [
    cycle(at(8), at(8, 50)),
    cycle(at(8, 30), at(9, 40), card="C2"),
    cycle(at(9), None, status="sent"),
    cycle(at(9, 45), at(10, 20), card="C2"),
]
NOW = at(10, 30)


def test_loop_metrics_match_the_hand_computed_figures() -> None:
    m = loop_metrics("L1", CYCLES, planned_lead_time_s=3600, cards=2, now=NOW, days=2)
    assert m.cycles == 3
    assert m.lead_time_p50_s == 50 * 60  # nearest rank: sorted 35, 50, 70 -> rank ceil(1.5) = 2
    assert m.lead_time_p90_s == 70 * 60  # rank ceil(2.7) = 3
    assert m.on_time_rate == pytest.approx(2 / 3)
    assert m.overdue_now == 1
    assert m.stockouts == 3
    assert m.stockout_s == 95 * 60
    assert m.daily_cycles == (0, 3)


def test_a_stockout_still_going_on_counts_up_to_now() -> None:
    spans = stockouts([cycle(at(9), None, "sent"), cycle(at(10), None, "sent")], cards=2, now=NOW)
    assert len(spans) == 1 and spans[0].end is None and spans[0].seconds(NOW) == 30 * 60


def test_a_delivery_in_the_same_second_as_an_empty_is_no_stockout() -> None:
    spans = stockouts([cycle(at(8), at(9)), cycle(at(9), at(9, 30))], cards=1, now=NOW)
    assert [(s.start, s.end) for s in spans] == [(at(8), at(9)), (at(9), at(9, 30))]
    assert stockouts([cycle(at(8), at(9)), cycle(at(9), at(9, 30))], cards=2, now=NOW) == []


def test_source_scorecard() -> None:
    rejected = cycle(at(7), at(7, 30), status="rejected")
    s = source_metrics("SM1", [*CYCLES, rejected])
    assert s.requests == 4  # closed: c1, c2, c4 and the rejected one; c3 is still open
    assert s.otif_rate == 0.5  # c1 and c4 on time and in full
    assert s.lead_time_mean_s == pytest.approx((50 + 70 + 35) * 60 / 3)
    # sample sd of 3000, 4200, 2100 s: deviations -100, 1100, -1000 -> sqrt(2,220,000 / 2)
    assert s.lead_time_stdev_s == pytest.approx(1_110_000**0.5)
    assert [(d.card_id, d.late_s) for d in s.worst] == [("C2", 600)]


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([], 50, None), ([5], 90, 5), ([1, 2, 3, 4], 50, 2), ([1, 2, 3, 4], 75, 3), ([4, 1, 3, 2], 100, 4)],
)
def test_percentile_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_small_charts() -> None:
    assert sparkline([0, 4, 8]) == " ▄█"
    assert sparkline([]) == ""
    assert per_day([at(9), at(10), at(9) - timedelta(days=1)], NOW, 3) == (0, 1, 2)
    assert fmt_duration(None) == "-" and fmt_duration(3900) == "1 h 05 min" and fmt_duration(59) == "59 s"
