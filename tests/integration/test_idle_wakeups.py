"""An idle runtime's threads sleep until something is due: no job polls once a second (issue 19).

Counted from /proc (the kernel's context switches of each thread), not timed: a thread that wakes
every second switches at least once a second, however loaded the machine is, and one that sleeps
through the window does not switch at all. Before, the checkpointer, the relay, the cancel outbox,
the MQTT watchdog and paho's network thread each woke every second (bench/idle_wakeups.py); now
each wakes at most once in the window (its 5 s timer, or none), a switch or two (the GIL).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kanban_terminal.runtime import Runtime
from kanban_terminal.services.terminal import Terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

pytestmark = pytest.mark.broker

WINDOW_S = 6.0
MOST = 4
"""Switches allowed a thread in the window: a wake or two (5 s timers) and their GIL hand-offs. A
thread woken every second switches at least 5 times in it (6 on this box, once a wake)."""


def switches() -> dict[str, int]:
    """Context switches so far of each of this process's named threads."""
    out: dict[str, int] = {}
    for t in threading.enumerate():
        try:
            text = Path(f"/proc/self/task/{t.native_id}/status").read_text()
        except OSError:
            continue
        counted = [x for x in text.splitlines() if x.startswith(("voluntary_", "nonvoluntary_"))]
        out[t.name] = sum(int(x.split()[1]) for x in counted)
    return out


def test_an_idle_runtime_s_jobs_do_not_wake_every_second(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config, _ = make_config(tmp_path, loops=1, cards=5, sensors=5)
    terminal = Terminal.open(config, tmp_path / "data", long_running=True)
    try:
        # keepalive 20 s, heartbeat 60 s: neither is due inside the window (paho's select() timeout
        # is keepalive / 4 = 5 s: at most two of those in it).
        settings = settings_for(mosquitto.port, keepalive_s=20, heartbeat_s=60)
        with Runtime(terminal, settings) as runtime:
            wait_for(runtime.subscribed, what="subscribed")
            wait_for(lambda: runtime.relay is not None and runtime.relay.inflight == 0, what="settled")
            # Sleeping is the experiment here: an idle window, measured in switches, not seconds.
            # Past the start's own steps: the first relay and escalation reads, the log anchor's second
            # message (5 s after the first, services/anchor_publisher.py), the checkpoint after them.
            time.sleep(6.0)
            before = switches()
            time.sleep(WINDOW_S)
            after = switches()
    finally:
        terminal.close()
    woke = {name: after[name] - before.get(name, 0) for name in after}
    print(woke)  # the figures, for the log
    sleepers = ["wal-checkpoint", "outbox-relay", "cancels"]
    sleepers += [n for n in woke if n.startswith(("mqtt-watchdog", "paho-mqtt-client"))]
    assert len(sleepers) == 5, sorted(woke)
    for name in sleepers:
        assert name in woke, f"no thread {name}: {sorted(woke)}"
        assert woke[name] <= MOST, f"{name} switched {woke[name]} times in {WINDOW_S} s idle"
