"""A re-route through the `reroute` CLI on a bridged line: the cancel reaches the owner on the plant side.

    terminal (in-test runtime) ── line broker ══ shipped bridge ══> plant broker ── peer a, peer b
                                                                    (processes: `upstream --instance`)

The team lead re-routes with `kanban-terminal reroute LP0` in another process; the terminal's
runtime sends the cancels within its 5 s timer, over the bridge, where the shared subscription hands
each to one peer. Every request must end cancelled by its owner, once, and no owner may still plan a
pick or a shipment (each peer's own SQLite file).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kanban_terminal.config import load_config
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.faults.support import need
from tests.support.audit import AuditSubscriber
from tests.support.bridged import BridgedPair, PeerProcess
from tests.support.mqtt_lines import line_config, publish_raw, settings_for, wait_for
from tests.support.peers import new_ids, request_message
from tests.support.supply_lines import EXTRA, PIN

pytestmark = pytest.mark.broker
PEER_TIMES = "[upstream]\naccept_after_s = 0\npick_after_s = 60\nship_after_s = 120\ntransit_s = 60\n"
"""Accepted at once; a pick or shipment still planned after the cancel shows in the peer's file."""


def q(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def cli(config: Path, data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KANBAN_DATA_DIR": str(data), "KANBAN_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "kanban_terminal", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_a_reroute_from_the_cli_over_a_bridge_stops_each_owner(tmp_path: Path) -> None:
    need("socat", "socat")
    pair = BridgedPair(tmp_path / "brokers", "5", proxy=False)
    config_path = tmp_path / "line.toml"
    config_path.write_text(line_config(loops=2, cards=6, sensors=0) + EXTRA + PEER_TIMES)
    data = tmp_path / "data"
    peers = [
        PeerProcess(config_path, tmp_path / "peers", pair.plant.port, name, tmp_path / f"peer-{name}.log")
        for name in ("a", "b")
    ]
    audit = AuditSubscriber(pair.line.port, tmp_path / "audit.db", ["kanban/v1/S1/L1/status"])
    try:
        wait_for(pair.bridge_up, timeout=15, what="bridge connected")
        assert cli(config_path, data, "enroll", "TL1", "--pin-stdin", stdin=f"{PIN}\n").returncode == 0
        terminal = Terminal.open(load_config(config_path), data)
        with audit:
            for peer in peers:
                peer.start()
            try:
                ids, owners = _reroute(pair, terminal, config_path, peers, audit)
            finally:
                for peer in peers:
                    peer.stop()
                terminal.close()
    finally:
        pair.close()
    logs = "".join(p.log.read_text() for p in peers)
    assert "passed on to its owner" in logs, "no cancel reached a non-owner: forwarding not tested"
    assert len({owners[r] for r in ids}) == 2, "the requests were shared"
    still = "SELECT request_id, stage FROM answer WHERE stage NOT IN ('accepted', 'cancelled')"
    planned = {row for p in peers for row in q(p.db, still) if row[0] in ids}
    assert planned == set(), f"an owner still picks or ships: {planned}"


def _reroute(
    pair: BridgedPair, terminal: Terminal, config: Path, peers: list[PeerProcess], audit: AuditSubscriber
) -> tuple[set[str], dict[str, str]]:
    """Six requests accepted, a re-route from the CLI, every cancel answered: (ids, owner by id)."""
    with TerminalServices(terminal, settings_for(pair.line.port)) as services:
        wait_for(services.subscribed, what="terminal subscribed")
        ids = {str(record_scan(terminal, f"C{n:05d}", source="test").request_id) for n in range(1, 7)}

        def statuses(kind: str) -> list[tuple[str, str]]:
            """(request id, by) per status event (a QoS 1 re-delivery has the same `id`)."""
            seen = [d for _, d, _ in audit.messages("%/status") if d]
            return list({d["id"]: (d["request_id"], d["by"]) for d in seen
                         if d["request_id"] in ids and d["status"] == kind}.values())  # fmt: skip

        wait_for(lambda: {r for r, _ in statuses("accepted")} == ids, what="accepted")
        # One more request in the share group shifts mosquitto's round robin, so the cancels do not
        # each meet their owner (as they did without it in test_peer_cancels.py).
        publish_raw(pair.plant.port, [request_message(new_ids(1)[0], 0, line="L2")])
        done = cli(config, Path(terminal.db.path).parent, "reroute", "LP0", "--badge", "TL1", "--pin-stdin",
                   "--note", "flood", stdin=f"{PIN}\n")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        answered = "SELECT count(*) FROM request_cancel WHERE answered_at IS NOT NULL"
        wait_for(lambda: q(terminal.db.path, answered) == [(6,)], timeout=40, what="cancels answered")
        owners = {str(r): str(by) for r, by in q(peers[0].db, "SELECT request_id, owner FROM claim")}
        wait_for(lambda: sorted(statuses("cancelled")) == sorted((r, owners[r]) for r in ids),
                 what="each request cancelled once, by its owner")  # fmt: skip
    return ids, owners
