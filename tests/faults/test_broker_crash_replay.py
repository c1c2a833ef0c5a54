"""A broker crash between its periodic saves must not lose device signals it acknowledged.

The plant's mosquitto saves its store every second or two (deploy/mosquitto/kanban-plant.conf), so
a SIGKILL loses what it acknowledged since the last save. For the bridge that is a bin signal it
has already marked sent, and for an offline terminal a signal it will never get. The bridge keeps
sent events for `replay_after_reconnect_s` and publishes them again after every reconnect; the
terminal drops repeats by (device, boot, seq).

Here the broker saves only when told to (SIGUSR1), so the kill always lands after the last save:
with no replay window the signals are gone (the control proves the crash is real), with the window
every one of them reaches the terminal exactly once, also when the broker stays down for longer
than the window (it counts back from the broker's last acknowledgement, not from the reconnect).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from firmware_bridge.bridge import Bridge
from firmware_bridge.config import BridgeConfig, DeviceConfig, LimitsConfig
from firmware_bridge.simulator import DeviceSimulator
from kanban_terminal.config import BinSensor, MqttSettings
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.andon import raise_andon
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.faults.support import query
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, wait_for
from tests.support.terminals import demo_config

pytestmark = [pytest.mark.broker, pytest.mark.pty]
BINS = 5


@pytest.mark.parametrize(
    "window_s, down_s",
    [(0.0, 0.0), (10.0, 0.0), (2.0, 4.0)],
    ids=["no-replay-control", "replay", "replay-after-an-outage-longer-than-the-window"],
)
def test_signals_a_killed_broker_acknowledged_still_reach_the_terminal(
    tmp_path: Path, window_s: float, down_s: float
) -> None:
    cfg = demo_config()
    cards = [card for loop in cfg.loops for card in loop.card_id_list()][:BINS]
    sensors = tuple(BinSensor(device="D1", bin=f"B{n}", card=card) for n, card in enumerate(cards))
    cfg = cfg.model_copy(update={"bins": sensors})
    terminal = Terminal.open(cfg, tmp_path / "terminal")
    # Saves only on SIGUSR1 or a clean stop: every kill lands after the last save.
    broker = Mosquitto(tmp_path / "broker", extra="autosave_on_changes false\nautosave_interval 3600").start()
    settings = MqttSettings(port=broker.port, keepalive_s=5, reconnect_max_s=1)
    device = DeviceSimulator("D1", link=tmp_path / "ttyD1")
    device.open()
    bridge = Bridge(
        BridgeConfig(
            site=cfg.site.id,
            line=cfg.line.id,
            bridge_id="br1",
            broker=MqttSettings(port=broker.port, keepalive_s=5, reconnect_max_s=1),
            limits=LimitsConfig(serial_retry_max_s=0.2, replay_after_reconnect_s=window_s),
            devices=(DeviceConfig(id="D1", port=str(device.link)),),
            state_dir=str(tmp_path / "bridge"),
        )
    )
    try:
        # The terminal's session and subscription exist on the broker and are saved; then it goes away.
        with TerminalServices(terminal, settings) as services:
            wait_for(services.subscribed, what="terminal subscribed")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGUSR1)
        store = broker.data / "mosquitto.db"
        wait_for(store.exists, what="broker store saved")
        bridge.start()
        wait_for(lambda: bridge.links["D1"].connected and bridge.mqtt.connected, what="bridge up")
        device.hello()
        for n in range(BINS):
            device.bin(f"B{n}", "empty")
        wait_for(lambda: bridge.counts["signals"] == BINS and len(bridge.outbox) == 0, what="broker has all")
        broker.kill()  # acknowledged to the bridge, queued for the absent terminal, never saved
        time.sleep(down_s)  # a broker host that takes a while to come back
        broker.start()
        wait_for(lambda: bridge.mqtt.connected, what="bridge reconnected")
        with TerminalServices(terminal, settings) as services:
            wait_for(services.subscribed, what="terminal back")
            if window_s:
                sql = "SELECT count(*) FROM card_log WHERE event = 'bin_empty'"
                wait_for(lambda: query(terminal.db.path, sql) == [(BINS,)], what="every signal applied")
            else:
                # Control: nothing can arrive; give the pipeline the same chance it had above.
                probe = "SELECT count(*) FROM card_log WHERE event = 'bin_empty'"
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and query(terminal.db.path, probe) == [(0,)]:
                    time.sleep(0.1)
    finally:
        bridge.stop()
        device.stop()
        broker.stop()
        terminal.close()
    applied = query(
        terminal.db.path, "SELECT card_id, count(*) FROM card_log WHERE event = 'bin_empty' GROUP BY card_id"
    )
    if window_s:
        assert sorted(applied) == sorted((card, 1) for card in cards)  # each once, none lost
    else:
        assert applied == [], "the broker kept the signals: the crash did not test anything"


@pytest.mark.parametrize("replay_s", [0.0, 10.0], ids=["no-replay-control", "replay"])
def test_andon_notices_a_killed_broker_acknowledged_still_reach_a_board_that_was_away(
    tmp_path: Path, replay_s: float
) -> None:
    cfg = demo_config()
    topics = LineTopics(cfg.site.id, cfg.line.id)
    terminal = Terminal.open(cfg, tmp_path / "terminal")
    broker = Mosquitto(tmp_path / "broker", extra="autosave_on_changes false\nautosave_interval 3600").start()
    settings = MqttSettings(
        port=broker.port, keepalive_s=5, reconnect_max_s=1, replay_after_reconnect_s=replay_s
    )
    try:
        # A plant andon board: a persistent session on the andon topic, saved, then away.
        Recorder(broker.port, topics.andon, client_id="andon-board").close()
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGUSR1)
        wait_for((broker.data / "mosquitto.db").exists, what="broker store saved")
        with TerminalServices(terminal, settings) as services:
            link = services.link
            assert link is not None
            wait_for(services.subscribed, what="terminal subscribed")
            andon = raise_andon(terminal, AndonKind.CALL, "ST10", "HELP", source="test").andon
            assert andon is not None
            # paho forgets a QoS 1 message when its PUBACK arrives: the broker has the notice.
            wait_for(lambda: not link.client._out_messages, what="notice acknowledged")
            broker.kill()  # acknowledged, queued for the absent board, never saved
            broker.start()
            wait_for(lambda: link.connected, what="terminal reconnected")
            board = Recorder(broker.port, topics.andon, client_id="andon-board")  # the board is back

            def raised() -> list[dict[str, object]]:
                return [
                    d for _, d, _ in board.messages if d.get("id") == andon.id and d["action"] == "raised"
                ]

            if replay_s:
                wait_for(lambda: bool(raised()), what="the raise notice reached the board")
            else:
                deadline = time.monotonic() + 3  # control: give it the same chance
                while time.monotonic() < deadline and not raised():
                    time.sleep(0.1)
            board.close()
    finally:
        broker.stop()
        terminal.close()
    if replay_s:
        assert {(d["id"], d["action"]) for d in raised()} == {(andon.id, "raised")}  # at least once
    else:
        assert raised() == [], "the broker kept the notice: the crash did not test anything"
