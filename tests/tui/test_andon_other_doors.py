"""The screen follows andons changed through another door (another process: the CLI, `serve`).

Such a change sends no event on the screen's bus; the screen read the andon board again only on
events, so a stop resolved from the CLI stayed LINE STOPPED on the screen until a restart, and a stop
raised from the CLI never showed. Here a second `Terminal` on the same SQLite file stands for the
other process (its own connections and its own bus, as the CLI's), and the App's one-second andon
tick runs as its timer would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.domain.andon import AndonKind, LineCondition
from kanban_terminal.services import andon as svc
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from tests.integration.test_stop_downtime_steps import team_lead
from tests.support.andon import TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.floor import settle


@pytest.fixture
def two_doors(tmp_path: Path) -> Iterator[tuple[Terminal, Terminal]]:
    clock = FakeClock()
    screen = enrolled(open_terminal(tmp_path, clock))
    other = open_terminal(tmp_path, clock)
    yield screen, other
    other.close()
    screen.close()


async def two_ticks(app: KanbanApp, pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        app._andon_second()  # what the App's one-second andon timer does
        await settle(app, pilot)


async def test_a_stop_raised_and_resolved_elsewhere_shows_and_clears_on_the_screen(
    two_doors: tuple[Terminal, Terminal],
) -> None:
    screen, other = two_doors
    app = KanbanApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await two_ticks(app, pilot)
        assert app.andon_line is not None and app.andon_line.condition is LineCondition.RUNNING
        raised = svc.raise_andon(other, AndonKind.STOP, "ST30", "SAFE", source="cli", auth=team_lead(other))
        assert raised.andon is not None, raised.message
        await two_ticks(app, pilot)
        assert app.andon_line.condition is LineCondition.STOPPED
        assert [v.id for v in app.andon_line.active] == [raised.andon.id]
        assert svc.acknowledge_andon(other, raised.andon.id, TEAM_LEAD, source="cli").ok
        assert svc.resolve_andon(
            other, raised.andon.id, "guard refitted", source="cli", auth=team_lead(other)
        ).ok
        await two_ticks(app, pilot)
        assert app.andon_line.condition is LineCondition.RUNNING
        assert app.andon_line.active == ()


async def test_no_change_elsewhere_reads_the_board_only_once(two_doors: tuple[Terminal, Terminal]) -> None:
    screen, _ = two_doors
    app = KanbanApp(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await two_ticks(app, pilot)  # the first look reads the board once, as a baseline
        reads = []
        app.refresh_andon = lambda: reads.append(1)  # type: ignore[method-assign]
        for _ in range(3):
            await two_ticks(app, pilot)
        assert reads == []  # the look found nothing new: the board is not read again
