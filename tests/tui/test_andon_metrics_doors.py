"""One STOP, three doors, the same metrics: the screen (F6 in the real app), a key-switch device's
button signal (the inbound service every MQTT adapter calls) and the CLI (`raise-andon` /
`resolve-andon`) each raise a STOP at ST20 for QUAL and resolve it 28 s later on a fixed clock.
`kanban-terminal metrics` (text and JSON, as printed) and the F11 screen's lines must then show
reason QUAL, station ST20 and 28 s down, whichever door it came through.

Before the card log had andon columns, metrics parsed `kind=...; reason=...` out of `detail` while
every door wrote `STOP ST20 QUAL`: all three showed reason "?", station "?", "0 s down".
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.adapters.wire import InboundDecoder
from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.domain.inbound import AndonSignal
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_signals import handle_andon_signal
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.andon import AndonScreen
from kanban_terminal.tui.screens.andon_dialogs import ResolveScreen
from kanban_terminal.tui.screens.metrics import MetricsScreen
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.tui.test_andon_tui import badge_and_pin, pick, settle

DOWN_S = 28
STATION, REASON = "ST20", "QUAL"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fixed clock for the test's terminals and for every terminal the CLI opens."""
    clock = FakeClock()
    opened = Terminal.open.__func__  # type: ignore[attr-defined]

    def open_on_clock(cls: type[Terminal], *args: Any, **kwargs: Any) -> Terminal:
        return opened(cls, *args, **{**kwargs, "clock": clock, "monotonic": clock.monotonic})  # type: ignore[no-any-return]

    monkeypatch.setattr(Terminal, "open", classmethod(open_on_clock))
    return clock


def cli(
    args: list[str], data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    common = ["--config", str(demo_config_path()), "--data-dir", str(data_dir)]
    code = main([*args, *common])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


async def by_screen(terminal: Terminal, clock: FakeClock, **_: Any) -> None:
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f6")
        await pilot.pause()
        # The demo lets anyone stop for quality (issue 18): no PIN to stop, a team lead's to restart.
        await pick(app, pilot, STATION, REASON)
        assert read_board(terminal).line.stopped
        clock.advance(seconds=DOWN_S)
        await app.switch_mode("andon")
        await settle(app, pilot)
        assert isinstance(app.screen, AndonScreen)
        await pilot.press("f8")
        await pilot.pause()
        await badge_and_pin(app, pilot, TEAM_LEAD, PIN)
        dialog = app.screen
        assert isinstance(dialog, ResolveScreen)
        dialog.query_one("#note-field").value = "gauge reset"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(app, pilot)
    assert not read_board(terminal).line.stopped


async def by_device(terminal: Terminal, clock: FakeClock, **_: Any) -> None:
    button = {
        "v": 1, "id": "ANDON-ST20-KEY:3:1", "device": "ANDON-ST20-KEY", "boot": "3", "seq": 1,
        "type": "andon_stop", "station": STATION, "reason": REASON,
    }  # fmt: skip
    # The inbound worker's road: the wire schema decodes the payload, the andon use case applies it.
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    decoded = InboundDecoder(terminal.config, topics).decode(
        topics.device_signal("ANDON-ST20-KEY"), json.dumps(button).encode(), terminal.clock()
    )
    assert isinstance(decoded, AndonSignal), decoded
    outcome = handle_andon_signal(terminal, decoded)
    assert outcome.status == "raised" and outcome.andon_id is not None, outcome.message
    clock.advance(seconds=DOWN_S)
    # A button raises; people resolve (the key switch has no resolve): the team lead, as on screen.
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, svc.Rejection)
    auth = AuthSession()
    auth.start(state)
    assert svc.resolve_andon(terminal, outcome.andon_id, "gauge reset", source="keyboard", auth=auth).ok


async def by_cli(terminal: Terminal, clock: FakeClock, *, run: Callable[[list[str]], str]) -> None:
    terminal.close()  # the CLI opens the terminal itself, as it would in a shell
    raised = run(["raise-andon", "stop", STATION, REASON.lower(), "--badge", TEAM_LEAD, "--pin-stdin"])
    andon_id = raised.split("andon ")[-1].strip()
    clock.advance(seconds=DOWN_S)
    run(["resolve-andon", andon_id, "--note", "gauge reset", "--badge", TEAM_LEAD, "--pin-stdin"])


async def f11_lines(terminal: Terminal) -> list[str]:
    app = KanbanApp(terminal)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+r")  # metrics (F11 is the terminal's full screen)
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MetricsScreen) and screen.lines
        return screen.lines


def andon_section(lines: list[str]) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith("Andons:"))
    end = next(i for i, line in enumerate(lines) if line.startswith("  material andons:"))
    return lines[start : end + 1]


@pytest.mark.parametrize("door", [by_screen, by_device, by_cli], ids=["screen", "device", "cli"])
async def test_a_stop_shows_the_same_in_metrics_whichever_door_raised_it(
    door: Callable[..., Any],
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_dir = tmp_path / "data"
    terminal = enrolled(open_terminal(data_dir, clock))
    await door(terminal, clock, run=lambda args: cli(args, data_dir, capsys, monkeypatch))
    terminal.close()
    clock.advance(minutes=5)

    report = json.loads(cli(["metrics", "--json"], data_dir, capsys, monkeypatch))
    expected = {"key": None, "count": 1, "downtime_s": float(DOWN_S), "share": 1.0}
    assert report["andons"]["reason"] == [{**expected, "key": REASON}]
    assert report["andons"]["station"] == [{**expected, "key": STATION}]

    text = andon_section(cli(["metrics"], data_dir, capsys, monkeypatch).splitlines())
    assert any(line.split()[:4] == [REASON, "1", "andons", f"{DOWN_S}"] for line in text), text
    assert any(line.split()[:4] == [STATION, "1", "andons", f"{DOWN_S}"] for line in text), text

    terminal = open_terminal(data_dir, clock)
    try:
        assert andon_section(await f11_lines(terminal)) == text  # the screen shows what the CLI prints
    finally:
        terminal.close()
