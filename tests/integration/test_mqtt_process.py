"""The terminal process is SIGKILLed with requests queued: they are sent after it restarts.

The terminal runs as a real process (`python -m kanban_terminal.runtime serve`), so paho's
in-memory queue really dies with it; only the SQLite outbox can carry the requests over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, make_config, wait_for

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[2]


def serve(config: Path, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    out = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "kanban_terminal.runtime", "serve", "--config", str(config),
         "--data-dir", str(data), "--mqtt", f"mqtt://127.0.0.1:{port}"],
        env=env, stdout=out, stderr=out,
    )  # fmt: skip


def test_requests_queued_in_a_killed_terminal_are_sent_after_restart(tmp_path: Path) -> None:
    config, config_path = make_config(tmp_path, loops=2, cards=20, sensors=0)
    data = tmp_path / "data"
    terminal = Terminal.open(config, data)  # migrate before the child opens the same file
    broker = Mosquitto(tmp_path / "broker")  # configured, not started: the link cannot come up
    log = tmp_path / "serve.log"
    child = serve(config_path, data, broker.port, log)
    try:
        raised = [
            record_scan(terminal, f"C{i:05d}", source="test", intent=Intent.EMPTY).request_id
            for i in range(1, 31)
        ]
        wait_for(lambda: b"MQTT link reconnecting" in log.read_bytes(), what="child up and retrying")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        broker.start()
        recorder = Recorder(broker.port, LineTopics("S1", "L1").requests)
        child = serve(config_path, data, broker.port, log)
        wait_for(lambda: set(recorder.ids()) >= set(raised), timeout=30, what="queued requests sent")
        assert len(set(recorder.ids())) == 30
        recorder.close()
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
        broker.stop()
        terminal.close()
    assert child.returncode == 0, log.read_text()
