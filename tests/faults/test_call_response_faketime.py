"""A real `serve` under libfaketime records and publishes an andon step on elapsed time across a step.

The harness of tests/faults/test_clock_steps.py (a timestamp file the test rewrites steps the wall
clock of `serve`; the monotonic clock is left real; a real broker): a device's button calls for
help (`andon_call`), `serve` raises the CALL and fires its tier 0 (the andon's elapsed anchor is
written then), the wall clock steps +1 h (or -1 h), and the same button cancels its call
(`andon_cancel`). `serve` writes the cancel row and publishes `cancelled` with `elapsed_s`: the real
seconds between the press and the cancel (a few), bounded by the real time the test saw pass. Before
0012 nothing recorded that figure, and the raise and cancel rows' `occurred_at` are an hour apart
(or the cancel clamped to the raise): that is what the wall difference still says, and what the
history would have shown.

Asserts are bounds that load cannot break: serve's figure can be no longer than the real time
between the test's press and the cancel's arrival.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from kanban_terminal.topics import LineTopics
from tests.faults.support import query
from tests.faults.test_clock_steps import HOUR, FakeWall, Line
from tests.integration.test_andon_mqtt import Listener
from tests.support.mqtt_lines import publish_raw, wait_for

pytestmark = pytest.mark.broker
BUTTON = "BTN-ST1"


def press(line: Line, seq: int, kind: str) -> None:
    body = {"v": 1, "id": f"{BUTTON}:b1:{seq}", "device": BUTTON, "boot": "b1", "seq": seq, "type": kind}
    body |= {"station": "ST1", "reason": "HLP"} if kind == "andon_call" else {"station": "ST1"}
    topics = LineTopics(line.config.site.id, line.config.line.id)
    publish_raw(line.broker.port, [(topics.device_signal(BUTTON), json.dumps(body).encode())])


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_serve_cancels_a_call_on_elapsed_time_across_a_step(tmp_path: Path, hours: int) -> None:
    wall = FakeWall(tmp_path / "faketime")
    line = Line(tmp_path, wall)
    topics = LineTopics(line.config.site.id, line.config.line.id)
    listener: Listener | None = None
    try:
        line.start()
        listener = Listener(line.broker, [topics.andon])
        pressed = time.monotonic()
        press(line, 1, "andon_call")
        raised, _ = listener.next(topics.andon, lambda p: p["action"] == "raised")
        andon_id = raised["id"]
        wait_for(
            lambda: query(line.db, "SELECT 1 FROM elapsed_anchor WHERE key = ?", (f"andon:{andon_id}",)),
            what="serve anchored the call (tier 0)",
        )
        wall.step(hours * HOUR)
        press(line, 2, "andon_cancel")
        cancelled, retained = listener.next(
            topics.andon, lambda p: p["action"] == "cancelled" and p["id"] == andon_id
        )
        real = time.monotonic() - pressed
        print(f"cancel published elapsed_s={cancelled['elapsed_s']}, real {real:.1f} s")  # the figures
        assert not retained
        assert 0 <= cancelled["elapsed_s"] <= real + 1  # whole seconds, rounded
        [(elapsed_s, raised_at, ended_at)] = query(
            line.db,
            "SELECT c.elapsed_s, r.occurred_at, c.occurred_at FROM card_log c JOIN card_log r "
            "ON r.andon_id = c.andon_id AND r.event = 'andon_raised' WHERE c.event = 'andon_cancelled'",
        )
        assert isinstance(elapsed_s, float) and round(elapsed_s) == cancelled["elapsed_s"]
        wall_s = (
            datetime.fromisoformat(str(ended_at)) - datetime.fromisoformat(str(raised_at))
        ).total_seconds()
        assert wall_s >= HOUR if hours > 0 else wall_s <= 0  # what the stored times alone would say
    finally:
        if listener is not None:
            listener.close()
        line.close()
