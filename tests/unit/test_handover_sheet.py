"""The handover sheet calls a loop at risk when the board does: a runway below its margin counts,
even with few cards waiting (the board's AT RISK and the sheet must not disagree at shift change)."""

from __future__ import annotations

from kanban_terminal.domain.handover import LoopRisk, at_risk


def test_a_short_runway_puts_a_loop_on_the_sheet_with_its_minutes() -> None:
    quiet = LoopRisk("ST40-MAN", waiting=0, cards=4, overdue=0)
    short = LoopRisk("ST30-DISC", waiting=1, cards=4, overdue=0, runway_min=9.4)
    assert at_risk([quiet, short]) == (short,)
    assert short.line() == "ST30-DISC: 1/4 cards waiting for a refill, runway 9 min"


def test_half_the_cards_waiting_or_an_overdue_request_still_count() -> None:
    half = LoopRisk("ST20-PLATE", waiting=2, cards=4, overdue=0)
    late = LoopRisk("ST10-BOLT", waiting=1, cards=3, overdue=1)
    assert at_risk([half, late]) == (half, late)
    assert late.line() == "ST10-BOLT: 1/3 cards waiting for a refill, 1 overdue"
