"""Issue 15, point 9: what a delivery says on the banner and in the card log agree, and a delivery
confirmation prompt is not listed as refused input (`rejected`)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import col, select

from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.storage.tables import CardLogRow, RejectedInputRow
from tests.support.terminals import Clock, open_terminal

CARD = "B1001Z"


def test_banner_and_log_give_the_same_lead_time(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    record_scan(terminal, CARD, source="keyboard")
    clock.advance(seconds=24.6)  # truncated that was "after 24 s"; rounded in the log, "25 s"
    delivered = record_scan(terminal, CARD, source="keyboard", confirmed=True)
    assert delivered.kind is OutcomeKind.DELIVERED
    with terminal.db.reading() as s:
        row = s.exec(select(CardLogRow).where(CardLogRow.event == "delivered")).one()
    assert row.detail == "lead time 25 s"
    assert "after 25 s" in delivered.message


def test_a_confirmation_prompt_is_not_refused_input(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    record_scan(terminal, CARD, source="keyboard")
    clock.advance(seconds=60)  # 1 min after a request with a 4 h lead time: asks to confirm
    assert record_scan(terminal, CARD, source="keyboard").kind is OutcomeKind.NEEDS_CONFIRMATION
    record_scan(terminal, "B1001Y", source="keyboard")  # a misread: that one is refused input
    with terminal.db.reading() as s:
        kept = s.exec(select(RejectedInputRow).order_by(col(RejectedInputRow.id))).all()
    assert [r.input for r in kept] == ["B1001Y"]
