"""Faults while a group of signals waits in the inbound linger (runtime/inbound_linger.py, issue 19).

While signals come fast a ready group is held a few ms on paho's thread, read from the broker but
neither committed nor acknowledged. If the terminal's process dies there, the broker still holds
those messages unacknowledged and delivers them again after the restart; if the broker dies there,
the group is applied at once (nothing waits for a link that is gone) and its PUBACKs are dropped
with the connection, so the sensors' retries and the broker's redeliveries meet the dedupe keys.
Either way every signal is applied, and none twice. Real broker, real `serve` process, real SQLite.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kanban_terminal.runtime import TerminalServices
from kanban_terminal.runtime.inbound_linger import Linger
from kanban_terminal.services.terminal import Terminal
from tests.faults import support
from tests.faults.support import query
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, settings_for, wait_for
from tests.support.paced_signals import SENSORS, line_signals, publish_paced
from tests.support.serve_kill_lingering import KILLED

pytestmark = pytest.mark.broker


def doubled(db: Path) -> list[tuple[object, ...]]:
    """Signals whose log rows (found by source and device time) come more than once."""
    return query(
        db,
        "SELECT source, occurred_at, event, count(*) FROM card_log WHERE source LIKE 'mqtt:%' "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )


def count(db: Path, sql: str) -> int:
    value = query(db, sql)[0][0]
    assert isinstance(value, int)
    return value


def serve_killed_at_wait(
    config: Path, data: Path, port: int, log: Path, waits: int
) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the child keeps its own copy of the descriptor
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.serve_kill_lingering", str(waits), "serve",
             "--config", str(config), "--data-dir", str(data), "--mqtt", f"mqtt://127.0.0.1:{port}"],
            env=support.env(), stdout=out, stderr=out, cwd=support.ROOT,
        )  # fmt: skip
    finally:
        out.close()


def test_a_process_killed_while_a_group_waits_loses_and_doubles_nothing(tmp_path: Path) -> None:
    n = 300
    config, config_path = make_config(tmp_path, loops=2, cards=20, sensors=SENSORS)
    data = tmp_path / "data"
    Terminal.open(config, data).close()
    db = data / "terminal.db"
    broker = Mosquitto(tmp_path / "broker").start()
    log = tmp_path / "serve.log"
    sent = line_signals(n)
    serve = None
    try:
        serve = serve_killed_at_wait(config_path, data, broker.port, log, waits=3)
        wait_for(lambda: b"MQTT link subscribed to" in log.read_bytes(), what="terminal subscribed")
        # 1,000 signals/s: groups wait in the linger; the third wait kills the process mid-flow.
        publisher = threading.Thread(target=publish_paced, args=(broker.port, sent, 0.001))
        publisher.start()
        assert serve.wait(timeout=60) == -9, "the fault hook did not kill serve"
        publisher.join(timeout=60)
        text = log.read_bytes()
        assert text.count(KILLED.encode()) == 1
        at_kill = count(db, "SELECT count(*) FROM inbound_signal")
        assert 0 < at_kill < n, at_kill  # killed mid-flow, with signals read and not committed
        serve = support.serve(config_path, data, broker.port, log)
        wait_for(lambda: count(db, "SELECT count(*) FROM inbound_signal") == n,
                 timeout=60, what="every signal applied after the restart")  # fmt: skip
    finally:
        support.stop(serve)
        broker.stop()
    assert doubled(db) == []
    events = count(db, "SELECT count(*) FROM card_log WHERE event IN ('bin_empty', 'bin_full')")
    assert events >= n // 2, events


def test_a_broker_killed_while_a_group_waits_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker is SIGKILLed from paho's thread at the third wait: the held group is applied when
    the link drops (its PUBACKs die with the connection); after the broker's restart the sensors
    send everything again and only what was missing is applied."""
    n = 200
    config, _ = make_config(tmp_path, loops=2, cards=20, sensors=SENSORS)
    terminal = Terminal.open(config, tmp_path / "data")
    broker = Mosquitto(tmp_path / "broker").start()
    sent = line_signals(n)
    real_hold = Linger.hold
    killed: list[int] = []

    def hold(self: Linger, now: float, pending: int, size_bound: int, *, can_wait: bool = True) -> bool:
        waiting = real_hold(self, now, pending, size_bound, can_wait=can_wait)
        if waiting and self.waits >= 3 and not killed:
            killed.append(pending)
            broker.kill()
        return waiting

    monkeypatch.setattr(Linger, "hold", hold)
    try:
        with TerminalServices(terminal, settings_for(broker.port)) as services:
            wait_for(lambda: services.subscribed(), what="link up")
            publish_paced(broker.port, sent, 0.001, acked=False)  # the broker dies under it
            assert killed and killed[0] >= 1
            wait_for(lambda: services.inbound.waiting == 0, what="the held group applied")
            at_kill = services.signals_applied
            assert 0 < at_kill < n, at_kill
            broker.start()
            wait_for(lambda: services.subscribed(), timeout=30, what="link back")
            publish_raw(broker.port, sent, client_id="sensors")  # the sensors retry everything
            wait_for(lambda: services.signals_applied == n, timeout=60, what="every signal applied")
            assert services.signals_duplicate >= at_kill  # the retries of what was applied: dropped
    finally:
        broker.stop()
        terminal.close()
    db = terminal.db.path
    assert count(db, "SELECT count(*) FROM inbound_signal") == n
    assert doubled(db) == []
