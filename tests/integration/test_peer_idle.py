"""The supermarket peer sleeps until an answer is due or a message comes: no 50 ms polling (issue 19).

Counted from /proc like tests/integration/test_idle_wakeups.py (context switches of the peer's
thread over an idle window), not timed. Before, the peer's thread woke every 50 ms to read its
outbox: 19-20 wake-ups a second idle (bench/peer_idle.py), over 100 switches in this window.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from tests.integration.test_idle_wakeups import switches
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, publish_raw, settings_for, wait_for
from tests.support.peers import fast_peer, new_ids, request_message

pytestmark = pytest.mark.broker

WINDOW_S = 6.0
MOST = 6
"""Switches allowed the peer's thread in the window: its claims' chores (every 5 s while connected:
one or two in the window) and their GIL hand-offs. Polling at 50 ms switched 120 times in it."""


def test_an_idle_peer_sleeps_and_still_answers_when_an_answer_falls_due(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = settings_for(mosquitto.port, keepalive_s=20)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    later = fast_peer(pick_after_s=1.0, ship_after_s=2.0)
    with UpstreamPeer(settings, "S1", later, tmp_path / "a.db", instance="a") as peer:
        wait_for(lambda: peer.link.subscribed, what="peer subscribed")
        (rid,) = new_ids(1)
        publish_raw(mosquitto.port, [request_message(rid, 0)])
        # Nothing arrives after the request: `picked` and `shipped` go out because the peer woke
        # for them when they fell due, and not for a message. An answer may come twice (the peer's
        # outbox sends it again when its PUBACK is late, at least once): order is what counts.
        wait_for(
            lambda: (
                list(dict.fromkeys(d["status"] for _, d, _ in status.messages))
                == ["accepted", "picked", "shipped"]
            ),
            what="every answer, each when due",
        )
        wait_for(lambda: peer.outbox.in_flight == 0, what="answers acknowledged")
        # Sleeping is the experiment here: an idle window, measured in switches, not seconds.
        before = switches()["upstream-peer"]
        time.sleep(WINDOW_S)
        after = switches()["upstream-peer"]
    status.close()
    assert after - before <= MOST, f"the idle peer's thread switched {after - before} times in {WINDOW_S} s"
