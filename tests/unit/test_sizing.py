"""Kanban sizing and replay on a perfectly regular history whose answer is known by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kanban_terminal.domain.sizing import LoopHistory, consumed, recommend, replay, segment

T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)
# A bin of 10 parts empties every 30 min (20 parts/h); every refill takes exactly 60 min.
EMPTIES = tuple(T0 + timedelta(minutes=30 * i) for i in range(20))
RAISED = EMPTIES[:16]  # the last refills end after the last recorded empty: leave them out
LEADS = (3600.0,) * 16


def history(cards: int = 2) -> LoopHistory:
    return LoopHistory("L1", 10, cards, 3600, EMPTIES, LEADS, RAISED, "supermarket")


def test_consumption_is_interpolated_within_the_bin_in_use() -> None:
    assert consumed(EMPTIES, EMPTIES[2], 10) == 20
    assert consumed(EMPTIES, EMPTIES[2] + timedelta(minutes=15), 10) == 25
    assert consumed(EMPTIES, T0 - timedelta(minutes=1), 10) == 0


def test_regular_history_gives_the_textbook_count() -> None:
    rec = recommend(history(), scan_delay_s=0)
    assert rec is not None
    # Lead-time demand is 20 parts every time: D = 20/h, L = 1 h, no spread so S = 0,
    # N = ceil(20 x 1 x (1 + 0) / 10) + 1 bin in use = 3.
    assert rec.demand_per_hour == pytest.approx(20)
    assert rec.lead_time_h == pytest.approx(1)
    assert rec.safety == 0
    assert rec.recommended == 3
    assert rec.change == 1


def test_scan_delay_lengthens_the_lead_time() -> None:
    rec = recommend(history(), scan_delay_s=30 * 60)
    assert rec is not None
    # 1.5 h at 20/h = 30 parts = 3 bins, + 1 in use.
    assert rec.lead_time_h == pytest.approx(1.5) and rec.recommended == 4


def test_replay_counts_stockouts_by_hand() -> None:
    # 2 cards: from the second empty on, the other card is still 30 min from coming back every time.
    two = replay(EMPTIES, LEADS, 2)
    assert (two.stockouts, two.stockout_h) == (19, 9.5)
    assert replay(EMPTIES, LEADS, 3).stockouts == 0


def test_not_enough_history() -> None:
    assert recommend(LoopHistory("L1", 10, 2, 3600, EMPTIES[:1], (), (), "supplier")) is None


def test_segmentation_explains_its_numbers() -> None:
    rec = recommend(history(), scan_delay_s=0)
    assert rec is not None
    steady = segment(rec, source_kind="supermarket", planned_lead_time_s=3600)
    assert steady.label == "tight pull" and "bins a day" in steady.reasons[0]
    supplier = segment(rec, source_kind="supplier", planned_lead_time_s=3600)
    assert supplier.label == "buffer" and "supplier" in supplier.reasons[0]
