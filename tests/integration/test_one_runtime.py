"""`serve` and the screen start the same jobs from one place, and the screen starts none of its own.

Both roots are run for real on one configuration (a broker, a serial scanner on a pty): `run_serve`
in a thread, and the screen's root (`cli.screen.run_screen`, what `run` and `demo` call) with the
App run headless by Textual's autopilot. What each runtime started, and which threads were alive,
is recorded at the moment both are up.
"""

from __future__ import annotations

import gc
import os
import threading
import tty
from collections import Counter
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot

from kanban_terminal.cli import screen as cli_screen
from kanban_terminal.config import SerialScannerSettings, demo_config_path, load_config
from kanban_terminal.runtime import Runtime, resolve_mqtt, run_serve
from kanban_terminal.tui.app import KanbanApp
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.pty]

TRANSIENT = ("line-state",)
"""Threads that come and go by themselves (the line state republished after a connect)."""


def _threads() -> Counter[str]:
    own = {threading.current_thread().name, "serve-under-test"}
    return Counter(t.name for t in threading.enumerate() if t.name not in own and t.name not in TRANSIENT)


def test_serve_and_the_screen_start_the_same_jobs_and_the_screen_none_of_its_own(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    scanner = SerialScannerSettings(name="ST10", port=os.ttyname(slave))
    config = load_config(demo_config_path()).model_copy(update={"scanners": (scanner,)})
    url = f"mqtt://127.0.0.1:{mosquitto.port}"
    before = _threads()
    jobs: dict[str, tuple[str, ...]] = {}
    threads: dict[str, Counter[str]] = {}
    root = ["serve"]
    real_start = Runtime.start

    def recording_start(self: Runtime) -> Runtime:
        started = real_start(self)
        jobs[root[0]] = self.jobs()
        return started

    def headless_run(self: KanbanApp) -> None:
        async def autopilot(pilot: Pilot[None]) -> None:
            for _ in range(400):  # the runtime opened after the first paint (tui/boot.py), the link
                # subscribed and the port open, as seen by the App
                if self.runtime_ready and self.runtime.subscribed() and self.scanner_states["ST10"]:
                    break
                await pilot.pause(0.05)
            # Exclusive workers (the status and andon reads) are cancelled when a newer one starts,
            # and `wait_for_complete` raises for those: wait until none is running instead.
            for _ in range(400):
                if not any(w.is_running for w in self.workers):
                    break
                await pilot.pause(0.05)
            threads["screen"] = _threads() - before
            self.exit()

        App.run(self, headless=True, size=(100, 30), auto_pilot=autopilot)

    monkeypatch.setattr(Runtime, "start", recording_start)
    monkeypatch.setattr(KanbanApp, "run", headless_run)
    try:
        stop = threading.Event()
        serving = threading.Thread(target=lambda: run_serve(config, tmp_path / "serve", url, stop=stop),
                                   name="serve-under-test")  # fmt: skip
        serving.start()
        try:
            wait_for(lambda: "serve" in jobs, what="serve started its runtime")
            up = {"mqtt-inbound", "escalation", "lost-cards", "wal-checkpoint", "outbox-relay", "health"}
            wait_for(lambda: up <= set(_threads()), what="serve's threads up")
            threads["serve"] = _threads() - before
        finally:
            stop.set()
            serving.join(timeout=30)
        root[0] = "screen"
        assert cli_screen.run_screen(config, tmp_path / "screen", resolve_mqtt(config, url), demo=False) == 0
    finally:
        gc.unfreeze()
        os.close(master)
        os.close(slave)

    assert jobs["serve"] == jobs["screen"]
    assert set(jobs["serve"]) == {
        "wal-checkpoint", "escalation", "lost-cards", "runway", "scanner:ST10",
        "mqtt-link", "mqtt-inbound", "relay", "cancels", "health", "andon-link", "log-anchor", "reconcile",
        "handover-link",
    }  # fmt: skip
    assert threads["serve"] - threads["screen"] == Counter()
    # Every thread the screen had beyond serve's is Textual's own: its workers' executor threads
    # (no second scanner reader, no timer of the App's own), and the thread that opened the runtime
    # after the first paint, which only waits to close it (tui/boot.py says why it must live).
    extra = threads["screen"] - threads["serve"]
    assert extra["runtime-boot"] == 1
    assert all(name.startswith("asyncio_") for name in extra - Counter(["runtime-boot"])), extra
