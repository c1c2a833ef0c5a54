"""An open stop's running downtime in the metrics counts elapsed time, whatever the wall clock does.

A STOP raised at ST30 for SAFE and anchored (the escalation runner's tick, as `serve` does), then 4
minutes pass on the monotonic clock with a +1 h (or -1 h) NTP step in them, the stop still open.
`kanban-terminal metrics` (JSON and text) and the metrics screen (ctrl+r in the real App) counted it
up to the wall clock's now: 3,840 s (or 0). Now each says 240 s, from the stop's elapsed anchor
(domain/andon_metrics.py `AndonRecord.running_s`, read by services/reports.py). Without an anchor
(no runtime ran) the wall difference stays, as before.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.terminal import Terminal
from tests.integration.test_stop_downtime_steps import STOP_S, four_minutes_with_a_step, raise_stop
from tests.support.andon import PIN, FakeClock, enrolled, open_terminal
from tests.tui.test_andon_metrics_doors import andon_section, f11_lines


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One pair of clocks for the test's terminals and every terminal the CLI opens."""
    clock = FakeClock()
    opened = Terminal.open.__func__  # type: ignore[attr-defined]

    def open_on_clock(cls: type[Terminal], *args: Any, **kwargs: Any) -> Terminal:
        both = {"clock": clock, "monotonic": clock.monotonic}
        return opened(cls, *args, **{**kwargs, **both})  # type: ignore[no-any-return]

    monkeypatch.setattr(Terminal, "open", classmethod(open_on_clock))
    return clock


def metrics(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *extra: str
) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    assert main(["metrics", *extra, "--config", str(demo_config_path()), "--data-dir", str(data_dir)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("anchored", [True, False], ids=["anchored", "no-runtime"])
@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
async def test_an_open_stop_counts_its_elapsed_downtime_in_the_cli_and_on_the_screen(
    clock: FakeClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hours: float,
    anchored: bool,
) -> None:
    data_dir = tmp_path / "data"
    terminal = enrolled(open_terminal(data_dir, clock))
    raise_stop(terminal)
    if anchored:
        EscalationRunner(terminal).tick()  # what `serve` does every second: the stop's anchor
    four_minutes_with_a_step(clock, hours)
    terminal.close()
    expected = STOP_S if anchored else max(0, STOP_S + 3600 * hours)  # the wall, without an anchor

    report = json.loads(metrics(data_dir, capsys, monkeypatch, "--json"))
    assert [(r["key"], r["downtime_s"]) for r in report["andons"]["reason"]] == [("SAFE", expected)]
    text = andon_section(metrics(data_dir, capsys, monkeypatch).splitlines())
    shown = [line.split()[:4] for line in text if line.split()[:1] == ["SAFE"]]
    assert shown and shown[0][:3] == ["SAFE", "1", "andons"], text
    terminal = open_terminal(data_dir, clock)
    try:
        assert andon_section(await f11_lines(terminal)) == text  # the screen shows what the CLI prints
    finally:
        terminal.close()
    if anchored:
        assert shown[0][3] == "4", text  # "4 min" of downtime, not "1 h 04 min" or "0 s"
