"""Lost cards, audit, replacement and printing; andon rows read from the log; the generator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import segno
from sqlmodel import select

from bench.history import generate
from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.domain.card_ids import generated_card_id
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.log_query import LogFilter, read_page
from kanban_terminal.services.lost_cards import audit, find_silent, flag_lost, replace_card
from kanban_terminal.services.metrics_text import report_lines, sizing_lines, sizing_rows
from kanban_terminal.services.printing import faces_for, sheets
from kanban_terminal.services.reports import build_report, loop_histories, read_andon_records
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import CardLogRow, CardRow
from tests.integration.conftest import T0, Clock


def cycle_one_card(terminal: Terminal, clock: Clock, card: str, times: int) -> None:
    """`times` requests of one card, each delivered 30 min later (a loop that keeps moving)."""
    for _ in range(times):
        clock.advance(minutes=30)
        assert record_scan(terminal, card, source="keyboard").kind is OutcomeKind.REQUEST_RAISED
        clock.advance(minutes=30)
        assert record_scan(terminal, card, source="keyboard").kind is OutcomeKind.DELIVERED


def test_silent_cards_are_flagged_lost_and_replaced(
    open_terminal: Callable[[], Terminal], clock: Clock
) -> None:
    terminal = open_terminal()
    a, b, c = terminal.config.loop("ST10-HEAD").card_id_list()  # 45 min lead time: limit 3 x 45 min
    cycle_one_card(terminal, clock, a, 3)  # 3 requests since b and c were last seen
    assert {s.card_id for s in find_silent(terminal)} == {b, c}
    # A loop standing still flags nothing, however long: `a` was seen last and its loop has not moved
    # since, and no card of the other loops (none of which ever moved) is flagged.
    clock.advance(days=3)
    assert {s.card_id for s in find_silent(terminal)} == {b, c}
    assert flag_lost(terminal, [b, c], actor="E4001") == [b, c]
    rows = read_page(terminal.db, LogFilter(events=("flagged_lost",))).entries
    assert {r.card_id for r in rows} == {b, c} and all(r.to_state == "lost" for r in rows)

    new_id = replace_card(terminal, b, actor="E4001")
    assert new_id == generated_card_id("B12", 4)
    assert record_scan(terminal, new_id, source="keyboard").kind is OutcomeKind.REQUEST_RAISED
    old = record_scan(terminal, b, source="keyboard")  # before issue 17: "Unknown card ... another line?"
    assert old.kind is OutcomeKind.NOT_ALLOWED and f"Card {b} is retired" in old.message
    assert "another line" not in old.message
    assert verify_log(terminal.db).ok
    terminal.close()

    reopened = open_terminal()  # the catalog sync must keep the old id retired
    assert b not in reopened.card_loops and new_id in reopened.card_loops
    with reopened.db.reading() as session:
        assert session.exec(select(CardRow.retired).where(CardRow.id == b)).one() is True
    again = record_scan(reopened, b, source="keyboard")  # no loop lists it any more: still retired
    assert again.kind is OutcomeKind.NOT_ALLOWED and "retired" in again.message
    result = audit(reopened, [a, new_id.lower(), "B99990", ""], loops=["ST10-HEAD"])
    assert result.found == tuple(sorted((a, new_id))) and result.missing == (c,)
    assert result.unknown == ("B99990",)


def test_print_sheet_has_a_qr_code_and_the_card_details(open_terminal: Callable[[], Terminal]) -> None:
    terminal = open_terminal()
    cards = [(card, loop.id) for card, loop in terminal.card_loops.items()][:9]
    pages = sheets(faces_for(terminal.config, cards, {cards[0][0]: "replaces B1209X"}))
    assert len(pages) == 2  # eight cards a page
    first = pages[0]
    assert first.startswith("<svg") and first.count("<image") == 8
    qr = segno.make(cards[0][0], error="m", micro=False)  # full QR: many scanners read no Micro QR
    assert qr.svg_data_uri(scale=1, border=2) in first
    ElementTree.fromstring(first)  # well-formed XML
    assert cards[0][0] in first and "Hex bolt M8x30" in first and "ST10 rack A1" in first
    assert "replaces B1209X" in first and "Fastener supplier (supplier)" in first


def test_print_cards_cli(tmp_path: Path) -> None:
    out = tmp_path / "cards.svg"
    args = ["--config", str(demo_config_path()), "--data-dir", str(tmp_path / "d")]
    assert main(["print-cards", *args, "--loop", "ST10-BOLT", "--out", str(out)]) == 0
    # The loop's 3 cards and its red card (issue 18: the demo's bolts keep one reserve bin), marked.
    assert out.read_text().count("<image") == 4
    assert out.read_text().count("RED CARD - reserve bin") == 1
    assert main(["print-cards", *args, "NOPE1", "--out", str(out)]) == 2


def test_andon_rows_are_read_from_the_log(open_terminal: Callable[[], Terminal], clock: Clock) -> None:
    terminal = open_terminal()
    rows = [(0, "andon_raised", None), (2, "andon_acknowledged", None), (12, "andon_resolved", 720.0)]
    with terminal.db.transaction() as session:
        for minutes, event, down in rows:
            at = T0 + timedelta(minutes=minutes)
            row = CardLogRow(
                occurred_at=at, recorded_at=at, event=event, source="keyboard", detail="STOP ST20 MAT",
                loop_id="ST20-PLATE", andon_id="A1", andon_kind="stop", andon_reason="MAT", station="ST20",
                downtime_s=down,
            )  # fmt: skip
            card_log.append(session, row)
    clock.advance(hours=1)
    (record,) = read_andon_records(terminal, T0 - timedelta(days=1))
    assert (record.kind, record.reason, record.station, record.material) == (
        "stop",
        "MAT",
        "ST20",
        "ST20-PLATE",
    )
    assert (record.resolved_at - record.raised_at) == timedelta(minutes=12)  # type: ignore[operator]
    assert [
        e.andon_id for e in read_page(terminal.db, LogFilter(station="ST20", events=("andon",))).entries
    ] == ["A1"] * 3
    report = build_report(terminal, days=7)
    plate = next(m for m in report.loops if m.loop_id == "ST20-PLATE")
    assert plate.material_andons == 1
    assert any("MAT" in line and "12 min down" in line for line in report_lines(report))
    assert verify_log(terminal.db).ok


def test_generated_history_is_valid_and_feeds_the_reports(
    open_terminal: Callable[[], Terminal], clock: Clock
) -> None:
    terminal = open_terminal()
    end = T0 + timedelta(days=7)
    result = generate(terminal.config, terminal.db.path, days=7, end=end, seed=1)
    clock.now = end
    assert result.log_rows > 5000 and result.requests > 500
    assert verify_log(terminal.db).ok
    report = build_report(terminal, days=7)
    assert sum(m.cycles for m in report.loops) > 500 and report.andons
    rows = sizing_rows(terminal.config, loop_histories(terminal, 7), scan_delay_s=300, service=0.95)
    assert all(r.rec is not None for r in rows)
    lines = sizing_lines(rows)
    assert any("ST10-HEAD" in line for line in lines) and any("hint:" in line for line in lines)
