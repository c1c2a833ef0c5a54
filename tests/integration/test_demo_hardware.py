"""`kanban-terminal demo --simulated-hardware`: a simulated station on a real pty, the real firmware
bridge, the demo's broker and supermarket, and the terminal's services, as the demo wires them.

The station's bin closes the whole pull loop over serial (empty -> request -> shipped -> full ->
delivered, every signal from device SIM-ST20), its button raises an andon call, and what the stack
light shows reaches the screen's status bar.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.adapters.demo import DemoEnvironment, demo_environment
from kanban_terminal.adapters.demo_hardware import DEVICE, StackLight, with_simulated_station
from kanban_terminal.config import TerminalConfig
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.status_bar import StatusBar
from tests.faults.support import query
from tests.support.mqtt_lines import wait_for
from tests.support.terminals import demo_config

pytestmark = [
    pytest.mark.broker,
    pytest.mark.pty,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="the bridge needs mosquitto (MQTT 5)"),
]


@pytest.fixture
def fast_demo() -> tuple[TerminalConfig, str]:
    """The demo config with the station wired in and a supermarket that delivers in ~5 s (a full
    signal within 3 s of the empty one would be taken for sensor bounce and debounced)."""
    cfg, card = with_simulated_station(demo_config())
    quick = cfg.upstream.model_copy(
        update={"accept_after_s": 0, "pick_after_s": 0.2, "ship_after_s": 0.4, "transit_s": 4}
    )
    return cfg.model_copy(update={"upstream": quick}), card


@pytest.fixture
def running(
    tmp_path: Path, fast_demo: tuple[TerminalConfig, str]
) -> Iterator[tuple[Terminal, DemoEnvironment]]:
    cfg, _card = fast_demo
    terminal = Terminal.open(cfg, tmp_path / "data")
    try:
        with demo_environment(cfg, tmp_path / "data", hardware=True) as env:
            assert env.station is not None
            with TerminalServices(terminal, env.mqtt) as services:
                wait_for(services.subscribed, what="terminal subscribed")
                station = env.station
                wait_for(lambda: station.light().online, what="station online")
                yield terminal, env
    finally:
        terminal.close()


def test_the_station_bin_closes_the_loop_over_serial(
    running: tuple[Terminal, DemoEnvironment], fast_demo: tuple[TerminalConfig, str]
) -> None:
    terminal, env = running
    _cfg, card = fast_demo
    assert env.station is not None
    env.station.bin_signal("empty")  # the demo's own timer may empty it too: same path, same result
    history = "SELECT event, source FROM card_log WHERE card_id = ? ORDER BY id"
    wait_for(
        lambda: "delivered" in [e for e, _s in query(terminal.db.path, history, (card,))],
        what="the full bin delivered the card",
    )
    events = query(terminal.db.path, history, (card,))
    assert ("bin_empty", f"mqtt:{DEVICE}") in events
    assert ("delivered", f"mqtt:{DEVICE}") in events
    assert ("shipped", "upstream") in events
    # The bridge forwarded the frames; nothing was published for the sensor the station replaced.
    assert env.station.bridge is not None and env.station.bridge.counts["signals"] >= 2
    assert not query(terminal.db.path, "SELECT 1 FROM card_log WHERE source = 'mqtt:BS-ST20-PLATE-1'")


def test_the_station_button_calls_help_and_its_lamp_follows(
    running: tuple[Terminal, DemoEnvironment],
) -> None:
    terminal, env = running
    station = env.station
    assert station is not None
    wait_for(lambda: station.light().describe() == ("green", "ok"), what="green line")
    station.press()
    andon = "SELECT kind, station, reason FROM andon"
    wait_for(lambda: query(terminal.db.path, andon), what="the andon call")
    assert query(terminal.db.path, andon) == [("call", "ST20", "HELP")]
    wait_for(lambda: station.light().amber == "blink", what="amber lamp")
    assert station.light().describe() == ("amber blinking + green", "warn")


def test_what_the_lamp_shows_reads_plainly() -> None:
    assert StackLight(DEVICE, red="on", buzzer=True, online=True).describe() == ("RED, buzzer", "alarm")
    assert StackLight(DEVICE, green="on", online=True).describe() == ("green", "ok")
    assert StackLight(DEVICE, online=True).describe() == ("dark", "off")
    assert StackLight(DEVICE, red="on").describe() == ("offline", "alarm")  # lamps unknown when unheard


async def test_the_status_bar_shows_the_station_lamp(tmp_path: Path) -> None:
    terminal = Terminal.open(demo_config(), tmp_path / "data")
    shown = [(DEVICE, "green", "ok")]
    app = KanbanApp(terminal, demo=True, device_view=lambda: tuple(shown))
    try:
        async with app.run_test(size=(160, 30)) as pilot:
            app._tick()
            await pilot.pause()
            assert f"{DEVICE}: green" in str(app.screen.query_one(StatusBar).render())
            shown[0] = (DEVICE, "RED, buzzer", "alarm")
            app._tick()
            await pilot.pause()
            assert f"{DEVICE}: RED, buzzer" in str(app.screen.query_one(StatusBar).render())
    finally:
        terminal.close()


def test_without_mosquitto_the_demo_says_what_to_install(tmp_path: Path) -> None:
    # amqtt, the fallback broker, speaks only MQTT 3.1.1 and the bridge needs 5: a clear refusal.
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin"}
    argv = [sys.executable, "-m", "kanban_terminal", "demo", "--simulated-hardware"]
    argv += ["--data-dir", str(tmp_path)]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    assert "simulated hardware needs mosquitto" in run.stderr and "apt-get install mosquitto" in run.stderr
    assert "Traceback" not in run.stderr
