"""An open request's age and overdue mark on the board follow elapsed time, as its material andon does.

The escalation runner anchors each open, uncalled request (`request:<id>`) and raises the material
CALL on elapsed time; the board and `status` coloured the same request OVERDUE from the wall clock,
so a +1 h step showed a 30-minute request 20 minutes old as late while no material andon came.
Real SQLite file; FakeClock moves both clocks. Without an anchor (no runtime ran) the wall decides.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.queries import read_status
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.andon import FakeClock, enrolled, open_terminal


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path / "data", clock))
    yield t
    t.close()


def scan_thirty_minute_card(terminal: Terminal) -> str:
    loop = next(lp for lp in terminal.config.loops if lp.lead_time_minutes == 30 and lp.material_andon)
    card = loop.card_id_list()[0]
    assert record_scan(terminal, card, source="keyboard").accepted
    return card


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_a_step_moves_neither_the_age_nor_the_overdue_mark(
    terminal: Terminal, clock: FakeClock, hours: float
) -> None:
    card = scan_thirty_minute_card(terminal)
    runner = EscalationRunner(terminal)
    runner.tick()  # anchors the open request, as `serve` does every second
    clock.advance(minutes=10)
    clock.step_wall(hours=hours)
    clock.advance(minutes=10)
    (request,) = [r for r in read_status(terminal).open_requests if r.card_id == card]
    assert request.age(clock.now, clock.mono) == timedelta(minutes=20)
    assert not request.overdue(clock.now, clock.mono)
    assert runner.tick() == [] and runner.raise_material_andons() == []  # and no material call either
    clock.advance(minutes=10, seconds=1)  # 30 min of elapsed time: late by either account
    assert request.overdue(clock.now, clock.mono)  # counted on from the read, no second read
    assert runner.raise_material_andons() != []


def test_without_an_anchor_the_wall_clock_decides_as_before(terminal: Terminal, clock: FakeClock) -> None:
    card = scan_thirty_minute_card(terminal)
    clock.advance(minutes=10)
    clock.step_wall(hours=1)
    (request,) = [r for r in read_status(terminal).open_requests if r.card_id == card]
    assert request.elapsed is None
    assert request.age(clock.now, clock.mono) == timedelta(minutes=70)
    assert request.overdue(clock.now, clock.mono)
