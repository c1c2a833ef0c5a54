"""A line broker bridged to a plant broker, two supermarket peers, and the faults issue 16 measured.

A terminal on the line broker raises a stream of requests; two peer processes on the plant broker
share them (MQTT 5 shared subscription, claims). Mid-stream the bridge's link is killed, then frozen
(SIGSTOP) for longer than the bridge's keepalive, then one peer is SIGKILLed and restarted. At the end:

* every request picked exactly once (each peer's own SQLite file says what it picked);
* every status back: an independent audit subscriber on the line broker saw every request answered
  `shipped`, each request by one peer only;
* 0 cards short of their state: the terminal's cards all stand at `shipped`.

Run for both shipped bridge files (MQTT 5 and 3.1.1), 60 requests each (~25 s). The long version,
~900 requests per bridge as issue 16 measured, is the soak's `bridged` experiment
(`python -m tests.faults.soak --only bridged`). Issue 16 measured before: 75 of ~900 statuses
lost, 45 cards stuck, 8 requests picked twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

import pytest

from kanban_terminal.config import load_config
from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.faults.support import need
from tests.support.audit import AuditSubscriber
from tests.support.bridged import BridgedPair, PeerProcess
from tests.support.mqtt_lines import line_config, settings_for, wait_for
from tests.support.peers import picked_by

pytestmark = pytest.mark.broker
LOOPS, CARDS = 4, 15
PEER_TIMES = "[upstream]\naccept_after_s = 0.2\npick_after_s = 0.6\nship_after_s = 1.0\ntransit_s = 1.0\n"


def _requests(terminal: Terminal) -> list[tuple[str, str | None, str]]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return con.execute(
            "SELECT r.id, r.upstream_status, c.state FROM replenishment_request r "
            "JOIN card c ON c.id = r.card_id"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"], ids=["mqtt5-bridge", "mqtt311-bridge"])
def test_every_request_picked_once_and_every_status_back_through_a_bridge_with_faults(
    protocol: str, tmp_path: Path
) -> None:
    figures = run_bridged_faults(tmp_path, protocol, loops=LOOPS, cards=CARDS)
    assert figures["picked_twice"] == 0 and figures["cards_short"] == 0


def run_bridged_faults(tmp_path: Path, protocol: str, *, loops: int, cards: int) -> dict[str, int]:
    """The experiment, at any size (the soak runs ~900 requests): asserts, and returns its figures."""
    need("socat", "socat")
    pair = BridgedPair(tmp_path / "brokers", protocol)
    try:
        wait_for(pair.bridge_up, timeout=15, what="bridge connected")
        return _run(pair, tmp_path, loops * cards, line_config(loops=loops, cards=cards, sensors=0))
    finally:
        pair.close()


def _run(pair: BridgedPair, tmp_path: Path, total: int, config_text: str) -> dict[str, int]:
    config_path = tmp_path / "line.toml"
    config_path.write_text(config_text + PEER_TIMES)
    config = load_config(config_path)
    peers = [
        PeerProcess(config_path, tmp_path / "peers", pair.plant.port, name, tmp_path / f"peer-{name}.log")
        for name in ("a", "b")
    ]
    audit = AuditSubscriber(
        pair.line.port, tmp_path / "audit.db", ["kanban/v1/S1/L1/requests", "kanban/v1/S1/L1/status"]
    )
    terminal = Terminal.open(config, tmp_path / "data")
    settings = settings_for(pair.line.port, keepalive_s=2, reconcile_after_s=3.0, republish_after_s=10.0)
    pace = threading.Event()
    try:
        with audit:
            for peer in peers:
                peer.start()
            with TerminalServices(terminal, settings) as services:
                wait_for(services.subscribed, what="terminal subscribed")
                for n in range(1, total + 1):
                    if n == total // 4:
                        pair.link.kill()  # the bridge's link drops
                    elif n == total // 4 + 8:
                        pair.link.start()
                    elif n == total // 2:
                        pair.link.freeze()  # silent, not closed: noticed by keepalive only
                    elif n == 3 * total // 4:
                        pair.link.thaw()  # after 15 requests x 0.1 s + the wait below
                        peers[1].kill()  # a peer dies mid-stream, with claims and answers pending
                    elif n == 3 * total // 4 + 5:
                        peers[1].start()
                    if n == 3 * total // 4 - 1:
                        pace.wait(8.0)  # frozen for longer than 1.5 x the bridge's 5 s keepalive
                    assert record_scan(terminal, f"C{n:05d}", source="test", intent=Intent.EMPTY).accepted
                    pace.wait(0.1)  # pacing the stream, not waiting for a condition
                try:
                    wait_for(
                        lambda: all(s == "shipped" for _, s, _ in _requests(terminal)),
                        timeout=60 + total // 10,
                        what="every card at its true state",
                    )
                except AssertionError as exc:
                    counts = Counter(s for _, s, _ in _requests(terminal))
                    raise AssertionError(f"{exc}: {dict(counts)}, bridge up {pair.bridge_up()}") from None
                wait_for(lambda: audit.count("%/status") >= 3 * total, timeout=20, what="audit caught up")
            for peer in peers:
                peer.stop()
    finally:
        for peer in peers:
            peer.stop()
        terminal.close()

    rows = _requests(terminal)
    ids = {rid for rid, _, _ in rows}
    assert len(ids) == total
    short = [(rid, status, state) for rid, status, state in rows if status != "shipped" or state != "shipped"]
    assert short == [], f"{len(short)} cards short of their state"
    picked = [picked_by(p.db) for p in peers]
    assert picked[0] & picked[1] == set(), f"{len(picked[0] & picked[1])} requests picked twice"
    assert picked[0] | picked[1] == ids, "a request nobody picked"
    # The independent witness: every request went out, and every one came back shipped, from one peer.
    sent = {d["id"] for _, d, _ in audit.messages("%/requests") if d}
    assert sent == ids
    by: dict[str, set[str]] = {}
    shipped = set()
    for _, d, _ in audit.messages("%/status"):
        if d:
            by.setdefault(d["request_id"], set()).add(d["by"])
            if d["status"] == "shipped":
                shipped.add(d["request_id"])
    assert shipped == ids, f"{len(ids - shipped)} statuses never came back"
    assert all(len(who) == 1 for who in by.values()), "a request answered by two peers"
    return {
        "requests": total,
        "picked_twice": len(picked[0] & picked[1]),
        "statuses_lost": len(ids - shipped),
        "cards_short": len(short),
        "statuses_seen_by_audit": audit.count("%/status"),
    }
