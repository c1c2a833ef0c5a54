"""The andon repository on the unit of work (storage/andon_rows.py), on a real SQLite file: a second
andon for one request is refused by the unique index as `DuplicateAndon` (what the escalation runner
catches when another process raised the material call first), and its unit of work leaves nothing
behind: no row, no log row, no event."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.domain.andon import Andon, AndonKind
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.storage.andon_rows import DuplicateAndon
from kanban_terminal.storage.tables import AndonRow, CardLogRow
from tests.support.andon import FakeClock, open_terminal


def test_a_second_andon_for_one_request_rolls_back_its_unit_of_work(tmp_path: Path) -> None:
    clock = FakeClock()
    terminal = open_terminal(tmp_path, clock)
    try:
        card = next(c for c, loop in terminal.card_loops.items() if loop.id == "ST20-PLATE")
        request_id = record_scan(terminal, card, source="keyboard", intent=Intent.EMPTY).request_id
        assert request_id is not None
        now = clock()

        def material(andon_id: str, station: str) -> Andon:
            return Andon(
                id=andon_id, kind=AndonKind.CALL, station=station, reason="MAT", raised_at=now,
                source="system", card_id=card, request_id=request_id,
            )  # fmt: skip

        with terminal.db.unit_of_work() as uow:
            uow.andons.add(material("A1", "ST20"))
        with terminal.db.reading() as s:
            log_before = len(s.exec(select(CardLogRow)).all())
        seen: list[object] = []
        terminal.bus.subscribe(seen.append)
        with pytest.raises(DuplicateAndon), terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
            uow.collect("announced only after a commit")
            uow.andons.log(CardLogRow(occurred_at=now, recorded_at=now, event="andon_raised", andon_id="A2"))
            uow.andons.add(material("A2", "ST10"))
        with terminal.db.reading() as s:
            assert s.exec(select(AndonRow.id).order_by(col(AndonRow.id))).all() == ["A1"]
            assert len(s.exec(select(CardLogRow)).all()) == log_before
        assert seen == []
        assert [v.andon.id for v in read_board(terminal).line.active] == ["A1"]
    finally:
        terminal.close()
