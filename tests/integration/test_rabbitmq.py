"""A real MQTT 3.1.1-only broker (Debian's RabbitMQ 3.10): terminal and peers in 3.1.1 mode (issue 16).

Issue 16 measured on this broker before: MQTT 5 refused (the terminal's `doctor` says so), and in
3.1.1 mode without shared subscriptions both peers handled every request. Here: the terminal and two
peers over 3.1.1, partitioned by config and with claims, every request picked once, every card at
its true state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.domain.scans import Intent
from kanban_terminal.peer_settings import PeerOwnership
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support import rabbitmq
from tests.support.mqtt_lines import make_config, settings_for, wait_for
from tests.support.peers import fast_peer, picked_by

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not rabbitmq.available(), reason="rabbitmq-server is not installed"),
]
CARDS = 12


@pytest.fixture(scope="module")
def rabbit() -> Iterator[int]:
    with rabbitmq.running_rabbitmq() as port:
        yield port


@pytest.mark.parametrize(
    "ownership",
    [
        [PeerOwnership(mode="partition", partitions=2, partition=i) for i in range(2)],
        [PeerOwnership(shared_subscription=False)] * 2,
    ],
    ids=["partition", "claims"],
)
def test_terminal_and_two_peers_on_rabbitmq_pick_every_request_once(
    rabbit: int, tmp_path: Path, ownership: list[PeerOwnership]
) -> None:
    # Six loops: crc32 puts LP0-LP3 in partition 0 and LP4, LP5 in partition 1.
    config, _ = make_config(tmp_path, loops=6, cards=2, sensors=0)
    terminal = Terminal.open(config, tmp_path / "data")
    settings = settings_for(rabbit, protocol="3.1.1", reconcile_after_s=2.0)
    peers = [
        UpstreamPeer(settings, "S1", fast_peer(own), tmp_path / f"p{i}.db", instance=f"p{i}")
        for i, own in enumerate(ownership)
    ]
    try:
        with peers[0], peers[1], TerminalServices(terminal, settings) as services:
            wait_for(lambda: services.subscribed() and all(p.link.subscribed for p in peers), what="up")
            for n in range(1, CARDS + 1):
                assert record_scan(terminal, f"C{n:05d}", source="test", intent=Intent.EMPTY).accepted
            con = sqlite3.connect(terminal.db.path)
            try:
                shipped = "SELECT count(*) FROM card WHERE state = 'shipped'"
                wait_for(lambda: con.execute(shipped).fetchone()[0] == CARDS, timeout=60, what="all shipped")
                ids = {r[0] for r in con.execute("SELECT id FROM replenishment_request")}
            finally:
                con.close()
    finally:
        terminal.close()
    picked = [picked_by(tmp_path / f"p{i}.db") for i in range(2)]
    assert picked[0] & picked[1] == set(), "a request picked by both peers"
    assert picked[0] | picked[1] == ids and len(ids) == CARDS
