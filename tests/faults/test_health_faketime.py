"""A real `serve` under libfaketime publishes its queue's age on elapsed time across wall-clock steps.

The harness of tests/faults/test_clock_steps.py (a timestamp file the test rewrites steps `serve`'s
wall clock; the monotonic clock is left real), with a broker whose ACL refuses the requests topic:
`serve` stays connected and its health message is published (every `mqtt.health_s`: 5 s here), while
a scanned card's request stays pending (refused, retried). After the health message that first shows
the request, the wall clock steps +1 h, then -2 h. Each next message's `oldest_age_s` must have
grown by about the real time between the two messages, never past the real time since the scan, and
never raise "oldest queued request" (limit 10 min). From the stored times it read ~3,700 s and
`degraded` after the +1 h step, and 0 after the step back. `oldest_raised_at` stays the stored
raise.

Asserts are bounds that load cannot break; the test waits for three messages (~15 s; 3 min at the
default 60 s).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.faults.test_clock_steps import HOUR, FakeWall, Line
from tests.integration.test_andon_mqtt import Listener
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.broker
HEALTH_S = 5
"""The line's `mqtt.health_s`: three messages in seconds, not minutes (the default is 60 s)."""
INTERVAL_AND_SLACK_S = 30.0


def refusing_requests(line: Line, tmp: Path) -> None:
    """Swap the line's broker for one on the same port that refuses every requests topic."""
    folder = Path(tempfile.mkdtemp(prefix="kanban-acl-"))
    os.chmod(folder, 0o755)  # mosquitto drops to its own user and must read the file
    acl = folder / "acl"
    acl.write_text("topic readwrite #\ntopic deny kanban/v1/+/+/requests\n")
    os.chmod(acl, 0o644)
    port = line.broker.port
    line.broker.stop()
    line.broker = Mosquitto(tmp / "acl-broker", port=port, extra=f"acl_file {acl}").start()


def next_health(listener: Listener, topic: str, after: float) -> tuple[dict[str, Any], float]:
    """The next health message with a request queued, received after monotonic `after`."""
    deadline = time.monotonic() + INTERVAL_AND_SLACK_S
    while True:
        got, payload, _retained = listener.messages.get(timeout=max(0.1, deadline - time.monotonic()))
        received = time.monotonic()
        if got == topic and payload["queue"]["requests"] == 1 and received > after:
            return payload, received


@pytest.mark.timeout(180)
def test_serve_s_health_counts_the_queue_s_age_on_elapsed_time(tmp_path: Path) -> None:
    wall = FakeWall(tmp_path / "faketime")
    line = Line(tmp_path, wall, extra=f"[mqtt]\nhealth_s = {HEALTH_S}\n")
    refusing_requests(line, tmp_path)
    topic = LineTopics(line.config.site.id, line.config.line.id).terminal_health(line.config.terminal.id)
    listener: Listener | None = None
    try:
        line.start()
        listener = Listener(line.broker, [topic])
        scanned = time.monotonic()
        terminal = Terminal.open(line.config, line.data, clock=wall)
        try:
            assert record_scan(terminal, line.config.loops[0].card_id_list()[0], source="keyboard").accepted
        finally:
            terminal.close()
        first, seen = next_health(listener, topic, scanned)
        ages = [first["queue"]["oldest_age_s"]]
        for step in (HOUR, -2 * HOUR):
            wall.step(step)
            health, received = next_health(listener, topic, seen)
            age = health["queue"]["oldest_age_s"]
            print(f"step {step:+} s: oldest_age_s {ages[-1]} -> {age}, {received - seen:.1f} s real between")
            assert ages[-1] + (received - seen) - 2 <= age <= received - scanned + 1, (ages, health)
            assert not [p for p in health["problems"] if p.startswith("oldest queued")], health
            assert health["queue"]["oldest_raised_at"] == first["queue"]["oldest_raised_at"]
            ages.append(age)
            seen = received
        assert "refused" in str(health["last_error"]), health  # why it stayed queued: the ACL
    finally:
        if listener is not None:
            listener.close()
        line.close()
