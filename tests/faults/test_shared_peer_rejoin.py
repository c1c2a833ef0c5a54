"""A supermarket peer on a shared subscription that subscribes after a broker restart still gets the
requests the terminal published before it came back, at once, not `republish_after_s` later.

mosquitto 2.0.11 restores the peer's persistent session after a SIGTERM restart but not its shared
subscription (adapters/peer_watch.py has the measurement), so every request published after the
restart and before the peer subscribes again is kept for nobody. The terminal sees the peer's
"online" for its new connection and publishes again what upstream has not answered. Two ways a plant
meets it: one broker for the terminal and the peer, and a line broker bridged to a restarted plant
broker (the terminal's link never drops there; the bridge forwards the line's queue into the plant
broker before the peer is back, and brings the peer's availability in).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.faults.support import TOPICS, query
from tests.support.audit import AuditSubscriber
from tests.support.bridged import BridgedPair
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

pytestmark = pytest.mark.broker

REPUBLISH_AFTER_S = 120
"""Far beyond the waits below: a request that reaches the peer did not come by the timed republish."""

UPSTREAM = UpstreamSettings(accept_after_s=0, pick_after_s=3600, ship_after_s=3600, transit_s=60)


def _raise(terminal: Terminal, cards: list[str]) -> list[str]:
    ids = []
    for card in cards:
        outcome = record_scan(terminal, card, source="test", intent=Intent.EMPTY)
        assert outcome.accepted and outcome.request_id, outcome
        ids.append(outcome.request_id)
    return ids


@pytest.mark.parametrize("topology", ["one-broker", "bridged"])
def test_a_peer_that_subscribes_after_a_broker_restart_gets_what_it_missed(
    tmp_path: Path, topology: str
) -> None:
    assert UPSTREAM.ownership.mode == "claim" and UPSTREAM.ownership.shared_subscription  # the default
    if topology == "bridged":
        pair: BridgedPair | None = BridgedPair(tmp_path / "brokers", "5", proxy=False)
        line, plant = pair.line, pair.plant
        wait_for(pair.bridge_up, timeout=15, what="bridge connected")
    else:
        pair, line = None, Mosquitto(tmp_path / "broker").start()
        plant = line
    config, _ = make_config(tmp_path, loops=2, cards=12, sensors=0)
    cards = [card for loop in config.loops for card in loop.card_id_list()]
    terminal = Terminal.open(config, tmp_path / "data")
    # The witness on the peer's broker: a plain persistent subscription, which mosquitto restores.
    audit = AuditSubscriber(plant.port, tmp_path / "audit.db", [TOPICS.requests]).start()
    peer_settings = settings_for(plant.port, keepalive_s=2)
    try:
        with TerminalServices(
            terminal, settings_for(line.port, keepalive_s=2, republish_after_s=REPUBLISH_AFTER_S)
        ):
            with UpstreamPeer(peer_settings, "S1", UPSTREAM, tmp_path / "peer.db") as peer:
                wait_for(lambda: peer.link.subscribed, what="peer subscribed")
                before = _raise(terminal, cards[:4])
                wait_for(lambda: peer.count_requests() == len(before), what="the first requests upstream")
            # The peer is gone (its session kept by the broker); its broker restarts cleanly.
            plant.stop(signal.SIGTERM)
            plant.start()
            missed = _raise(terminal, cards[4:14])
            audited = lambda: {data["id"] for _t, data, _d in audit.messages() if data}  # noqa: E731
            wait_for(lambda: set(missed) <= audited(), timeout=30, what="the requests at the peer's broker")
            with UpstreamPeer(peer_settings, "S1", UPSTREAM, tmp_path / "peer.db") as peer:
                wait_for(
                    lambda: peer.count_requests() == len(before) + len(missed),
                    timeout=30,
                    what=f"the {len(missed)} requests published while the peer was away",
                )
                wait_for(lambda: _all_accepted(terminal), timeout=30, what="every request answered")
    finally:
        audit.stop()
        if pair is not None:
            pair.close()
        else:
            line.stop()
        terminal.close()
    # Each applied once (a copy the peer got twice, e.g. redelivered from its session because its ack
    # was still in flight when it stopped, is answered again and ignored here as a repeat).
    accepted = [
        rid for (rid,) in query(terminal.db.path, "SELECT request_id FROM card_log WHERE event = 'accepted'")
    ]
    assert sorted(accepted) == sorted(before + missed)


def _all_accepted(terminal: Terminal) -> bool:
    sql = "SELECT count(*) FROM replenishment_request WHERE upstream_status IS NULL"
    return query(terminal.db.path, sql)[0][0] == 0
