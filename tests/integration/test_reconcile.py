"""Every status comes back: the peer's outbox and the terminal's status query (issue 16).

Statuses the peer sent while the terminal was away are lost for good when the broker restarts
without persistence (the terminal's queued session with them is gone). Before issue 16 the terminal
asked again only for requests with NO status at all, so these cards stayed at `accepted`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.mosquitto import Mosquitto, running_mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for
from tests.support.peers import fast_peer, shipped_acked

pytestmark = pytest.mark.broker
CARDS = 12


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = make_config(tmp_path, loops=2, cards=CARDS // 2, sensors=0)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


@pytest.fixture
def volatile_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """No persistence: a restart forgets every session and every queued message."""
    with running_mosquitto(tmp_path / "volatile", plant=False) as broker:
        yield broker


def _statuses(terminal: Terminal) -> list[str | None]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return [r[0] for r in con.execute("SELECT upstream_status FROM replenishment_request")]
    finally:
        con.close()


def _lose_statuses_in_a_broker_restart(
    terminal: Terminal, broker: Mosquitto, peer_db: Path, reconcile_after_s: float
) -> TerminalServices:
    """Raise requests, let them be accepted, then let the peer ship them while the terminal is away
    and restart the broker without persistence. Returns a started runtime, reconnected."""
    settings = settings_for(broker.port, reconcile_after_s=reconcile_after_s, republish_after_s=600)
    peer_settings = fast_peer(pick_after_s=2.0, ship_after_s=2.5)
    with UpstreamPeer(settings, "S1", peer_settings, peer_db) as peer:
        with TerminalServices(terminal, settings) as services:
            wait_for(lambda: services.subscribed() and peer.link.subscribed, what="links up")
            for n in range(1, CARDS + 1):
                assert record_scan(terminal, f"C{n:05d}", source="test", intent=Intent.EMPTY).accepted
            wait_for(lambda: _statuses(terminal) == ["accepted"] * CARDS, what="all accepted")
        # The terminal is away: picked and shipped wait in its broker session...
        wait_for(lambda: len(shipped_acked(peer_db)) == CARDS, what="peer shipped all, broker has them")
    broker.stop()  # ...which a broker without persistence forgets.
    broker.start()
    services = TerminalServices(terminal, settings).start()
    wait_for(lambda: services.subscribed(), what="terminal back")
    return services


def test_a_status_lost_in_a_broker_restart_comes_back_through_the_status_query(
    terminal: Terminal, volatile_broker: Mosquitto, tmp_path: Path
) -> None:
    services = _lose_statuses_in_a_broker_restart(terminal, volatile_broker, tmp_path / "peer.db", 1.0)
    settings = settings_for(volatile_broker.port)
    try:
        with UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "peer.db") as peer:
            wait_for(lambda: _statuses(terminal) == ["shipped"] * CARDS, what="every card at its true state")
            assert peer.queries >= 1 and peer.answered_again >= CARDS
    finally:
        services.stop()
    con = sqlite3.connect(terminal.db.path)
    states = [r[0] for r in con.execute("SELECT state FROM card WHERE open_request_id IS NOT NULL")]
    con.close()
    assert states == ["shipped"] * CARDS


def test_without_the_query_the_lost_statuses_stay_lost(
    terminal: Terminal, volatile_broker: Mosquitto, tmp_path: Path
) -> None:
    """The control: with the query far away, the cards stay at `accepted` although the peer shipped."""
    services = _lose_statuses_in_a_broker_restart(terminal, volatile_broker, tmp_path / "peer.db", 3600.0)
    settings = settings_for(volatile_broker.port)
    try:
        with UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "peer.db") as peer:
            wait_for(lambda: peer.link.subscribed, what="peer back")
            # What the other test waits for could only come from a query; none is due for an hour.
            assert peer.queries == 0
            assert _statuses(terminal) == ["accepted"] * CARDS
    finally:
        services.stop()
