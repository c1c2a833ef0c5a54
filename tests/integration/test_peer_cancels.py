"""A re-route's cancel reaches the request's owner among several supermarket peers (real mosquitto).

On a shared subscription a cancel reaches ONE instance; before peer_cancels.py, when that was not
the instance whose claim won, the owner picked and shipped anyway (the line got the parts twice).
Each test reads the peers' own SQLite files: what an owner still plans to send is the fact
"nothing is shipped" is about, and it does not depend on waiting out a pick time.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.peer_settings import PeerOwnership
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.reroute import reroute_loop
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from kanban_terminal.topics import LineTopics
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, publish_raw, settings_for, wait_for
from tests.support.peers import fast_peer, new_ids, partition_peers, request_message
from tests.support.supply_lines import supply_config, team_lead

pytestmark = pytest.mark.broker
SLOW = {"accept_after_s": 0.0, "pick_after_s": 60.0, "ship_after_s": 120.0, "transit_s": 60.0}
"""Accepted at once, picked and shipped long after the test: what is still planned shows in the file."""


def q(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def cancel_message(request_id: str, n: int, attempt: int = 1) -> tuple[str, bytes]:
    """The terminal's cancel of `request_message(request_id, n)`, as services/cancel_outbox.py writes it."""
    body = {
        "v": 1, "type": "cancel", "id": request_id, "site": "S1", "line": "L1", "terminal": "L1-T1",
        "loop": f"LP{n % 7}", "card": f"C{n:05d}", "source": "SM1", "reason": "re-routed to SM2",
        "cancelled_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "attempt": attempt,
    }  # fmt: skip
    return LineTopics("S1", "L1").requests, json.dumps(body).encode()


def answers(status: Recorder, ids: set[str]) -> list[tuple[str, str, str]]:
    """(request id, status, by) of every status seen for `ids`."""
    seen = list(status.messages)
    return [(d["request_id"], d["status"], d["by"]) for _, d, _ in seen if d.get("request_id") in ids]


def owners(db: Path, ids: set[str]) -> dict[str, str]:
    return {rid: by for rid, by in q(db, "SELECT request_id, owner FROM claim") if rid in ids}


def planned(db: Path, ids: set[str]) -> set[tuple[str, str]]:
    """(request id, stage) a peer still plans to send, or has sent, beyond `accepted` and `cancelled`."""
    rows = q(db, "SELECT request_id, stage FROM answer WHERE stage NOT IN ('accepted', 'cancelled')")
    return {(rid, stage) for rid, stage in rows if rid in ids}


def idle(dbs: list[Path]) -> bool:
    """Every claim and notice settled and every answer due acknowledged, in every peer's file."""
    for db in dbs:
        tables = {t for (t,) in q(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
        pending = [f"(SELECT count(*) FROM {t})" for t in ("pending_claim", "pending_cancel") if t in tables]
        due = "(SELECT count(*) FROM answer WHERE sent = 0 AND due <= ?)"
        if q(db, f"SELECT {' + '.join([*pending, due])}", time.time()) != [(0,)]:
            return False
    return True


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = supply_config(tmp_path, cards=6)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


def test_a_reroute_stops_the_owner_of_each_request_whichever_peer_hears_the_cancel(
    mosquitto: Mosquitto, terminal: Terminal, tmp_path: Path
) -> None:
    """Six requests of a loop shared by two peers, then a re-route: the shared subscription hands the
    cancels round robin, so some reach the peer that does not own the request. Every owner stops,
    answers `cancelled` exactly once, and plans no pick or shipment."""
    settings = settings_for(mosquitto.port)
    slow = UpstreamSettings.model_validate(SLOW)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    dbs = [tmp_path / "a.db", tmp_path / "b.db"]
    with (
        UpstreamPeer(settings, "S1", slow, dbs[0], instance="a") as a,
        UpstreamPeer(settings, "S1", slow, dbs[1], instance="b") as b,
        TerminalServices(terminal, settings) as services,
    ):
        wait_for(lambda: services.subscribed() and a.link.subscribed and b.link.subscribed)
        old = {record_scan(terminal, f"C{n:05d}", source="test").request_id for n in range(1, 7)}
        assert None not in old
        ids = {str(rid) for rid in old}
        wait_for(lambda: {r for r, s, _ in answers(status, ids) if s == "accepted"} == ids, what="accepted")
        owner = owners(dbs[0], ids)
        assert owner == owners(dbs[1], ids) and len(owner) == 6, "the peers agree on every owner"
        assert set(owner.values()) == {"SM1-peer-a", "SM1-peer-b"}, "the requests were shared"
        # mosquitto hands a share group's messages round robin (seen here: with the six requests
        # and then their six cancels, every cancel went to its owner). One more request, of another
        # line, shifts the turn by one, so the cancels meet the other peer.
        before = a.received + b.received
        publish_raw(mosquitto.port, [request_message(new_ids(1)[0], 0, line="L2")])
        wait_for(lambda: a.received + b.received > before, what="the shift")

        done = reroute_loop(terminal, "LP0", source="test", auth=team_lead(terminal), note="flood")
        assert done.ok and {c for _, c, _ in done.moved} == ids
        answered = "SELECT count(*) FROM request_cancel WHERE answered_at IS NOT NULL"
        wait_for(lambda: q(terminal.db.path, answered) == [(6,)], what="upstream confirmed every cancel")
        wait_for(lambda: idle(dbs), what="peers settled")
        forwarded = a.cancels.forwarded + b.cancels.forwarded
    status.close()
    cancelled = [(rid, by) for rid, s, by in answers(status, ids) if s == "cancelled"]
    assert sorted(cancelled) == sorted(owner.items()), "each request cancelled once, by its owner"
    assert planned(dbs[0], ids) | planned(dbs[1], ids) == set(), "an owner still picks or ships"
    assert not [s for _, s, _ in answers(status, ids) if s in ("picked", "shipped")]
    assert forwarded > 0, "no cancel reached a non-owner: the test did not test forwarding"


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_cancel_before_its_request_is_answered_once_and_the_request_never_picked(
    mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    """Cancels first (a redelivered request arrives late), then the requests: shared (MQTT 5) one
    peer hears each cancel and tells the other; without shared subscriptions (3.1.1) both hear all.
    Whoever wins the claim answers `cancelled` once; with answers due at once, nothing is picked."""
    n = 10
    ids = new_ids(n)
    dbs = [tmp_path / "a.db", tmp_path / "b.db"]
    settings = settings_for(mosquitto.port, protocol=protocol)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    with (
        UpstreamPeer(settings, "S1", fast_peer(), dbs[0], instance="a") as a,
        UpstreamPeer(settings, "S1", fast_peer(), dbs[1], instance="b") as b,
    ):
        wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        publish_raw(mosquitto.port, [cancel_message(rid, i) for i, rid in enumerate(ids)])
        for db in dbs:
            wait_for(lambda: len(owners(db, set(ids))) == n, what="every cancel known and claimed")  # noqa: B023
        publish_raw(mosquitto.port, [request_message(rid, i) for i, rid in enumerate(ids)], "late")
        wait_for(lambda: a.received + b.received + a.duplicates + b.duplicates + a.not_mine + b.not_mine >= n,
                 what="the late requests handled")  # fmt: skip
        wait_for(lambda: {r for r, s, _ in answers(status, set(ids)) if s == "cancelled"} == set(ids))
        wait_for(lambda: idle(dbs), what="peers settled")
        forwarded = a.cancels.forwarded + b.cancels.forwarded
    status.close()
    seen = answers(status, set(ids))
    assert {s for _, s, _ in seen} == {"cancelled"}, f"a request picked: {seen}"
    # One answering peer per request, its claim's winner. A late copy of the request that reaches
    # it is a duplicate, answered with the current stage (`cancelled`) as any duplicate is; the
    # terminal ignores a second `cancelled` (services/supplier_trouble.apply_cancelled).
    owner = owners(dbs[0], set(ids))
    assert {(r, by) for r, _, by in seen} == set(owner.items())
    assert owners(dbs[1], set(ids)) == owner
    assert (forwarded > 0) == (protocol == "5"), "notices only where a cancel reaches one peer"


def test_a_cancel_for_a_stopped_owner_is_answered_by_it_when_it_is_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The owner is down while the cancel and its re-send come: the live peer gets at least one of
    them (round robin) and leaves a retained notice; the owner, restarted, stops and answers."""
    settings = settings_for(mosquitto.port)
    slow = UpstreamSettings.model_validate(SLOW)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    (rid,) = new_ids(1)
    peers = {n: UpstreamPeer(settings, "S1", slow, tmp_path / f"{n}.db", instance=n) for n in "ab"}
    for p in peers.values():
        p.__enter__()
    try:
        wait_for(lambda: all(p.link.subscribed for p in peers.values()), what="peers subscribed")
        publish_raw(mosquitto.port, [request_message(rid, 0)])
        wait_for(lambda: "accepted" in {s for _, s, _ in answers(status, {rid})}, what="accepted")
        owner_id = owners(tmp_path / "a.db", {rid})[rid]
        owner = owner_id.removeprefix("SM1-peer-")
        other = peers["b" if owner == "a" else "a"]
        peers[owner].__exit__(None, None, None)
        publish_raw(mosquitto.port, [cancel_message(rid, 0, 1), cancel_message(rid, 0, 2)])
        wait_for(lambda: other.cancels.forwarded >= 1, what="the live peer passed the cancel on")
        assert not [s for _, s, _ in answers(status, {rid}) if s == "cancelled"], "nobody else answers"
        back = UpstreamPeer(settings, "S1", slow, tmp_path / f"{owner}.db", instance=owner)
        peers[owner] = back.__enter__()
        wait_for(lambda: "cancelled" in {s for _, s, _ in answers(status, {rid})}, what="the owner answered")
        wait_for(lambda: idle([tmp_path / "a.db", tmp_path / "b.db"]), what="peers settled")
    finally:
        for p in peers.values():
            if p._thread.is_alive():
                p.__exit__(None, None, None)
    status.close()
    cancelled = [by for _, s, by in answers(status, {rid}) if s == "cancelled"]
    # One answer per attempt at most (the second, if any, the terminal ignores: already confirmed).
    assert 1 <= len(cancelled) <= 2 and set(cancelled) == {owner_id}, cancelled
    assert planned(tmp_path / f"{owner}.db", {rid}) == set(), "the owner still picks or ships"


def test_in_partition_mode_only_the_loops_peer_answers_a_cancel(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Every partitioned peer hears every cancel; only the one whose partition holds the loop answers."""
    ids = new_ids(8)
    settings = settings_for(mosquitto.port)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    peers = partition_peers(settings, tmp_path)
    with peers[0] as p0, peers[1] as p1:
        wait_for(lambda: p0.link.subscribed and p1.link.subscribed, what="peers subscribed")
        publish_raw(mosquitto.port, [cancel_message(rid, i) for i, rid in enumerate(ids)])
        publish_raw(mosquitto.port, [request_message(rid, i) for i, rid in enumerate(ids)], "late")
        wait_for(lambda: p0.cancelled + p1.cancelled == 2 * len(ids), what="both heard every cancel")
        wait_for(lambda: {r for r, s, _ in answers(status, set(ids)) if s == "cancelled"} == set(ids))
        wait_for(lambda: idle([tmp_path / "p0.db", tmp_path / "p1.db"]), what="peers settled")
    status.close()
    seen = answers(status, set(ids))
    assert {s for _, s, _ in seen} == {"cancelled"}, f"a request picked: {seen}"
    first = PeerOwnership(mode="partition", partitions=2, partition=0)
    expected = {(rid, "SM1-peer-p0" if first.owns_loop("L1", f"LP{i % 7}") else "SM1-peer-p1")
                for i, rid in enumerate(ids)}  # fmt: skip
    assert {(r, by) for r, _, by in seen} == expected, "answered by another partition's peer"


def test_a_cancel_hard_on_its_request_reaches_the_other_peer_while_the_claim_is_in_flight(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Each request followed at once by its cancel: the share group's round robin hands the request
    to one peer and the cancel to the other, before the claim has settled anywhere. Whoever ends up
    owning each request (the request's claimant, or the cancel's) answers `cancelled` once and plans
    nothing else."""
    n = 10
    ids = new_ids(n)
    dbs = [tmp_path / "a.db", tmp_path / "b.db"]
    settings = settings_for(mosquitto.port)
    slow = UpstreamSettings.model_validate(SLOW)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    with (
        UpstreamPeer(settings, "S1", slow, dbs[0], instance="a") as a,
        UpstreamPeer(settings, "S1", slow, dbs[1], instance="b") as b,
    ):
        wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        pairs = [m for i, rid in enumerate(ids) for m in (request_message(rid, i), cancel_message(rid, i))]
        publish_raw(mosquitto.port, pairs)
        wait_for(lambda: {r for r, s, _ in answers(status, set(ids)) if s == "cancelled"} == set(ids))
        wait_for(lambda: idle(dbs), what="peers settled")
        forwarded = a.cancels.forwarded + b.cancels.forwarded
        received = (a.received, b.received)
    status.close()
    owner = owners(dbs[0], set(ids))
    assert owner == owners(dbs[1], set(ids)) and len(owner) == n
    # A claim lost by a cancel's copy takes nothing off `received` (it never counted one).
    assert min(received) >= 0 and sum(received) <= n, received
    cancelled = [(rid, by) for rid, s, by in answers(status, set(ids)) if s == "cancelled"]
    assert sorted(cancelled) == sorted(owner.items()), "each request cancelled once, by its owner"
    assert planned(dbs[0], set(ids)) | planned(dbs[1], set(ids)) == set(), "an owner still picks or ships"
    assert forwarded > 0, "no cancel reached the other peer: the test did not test forwarding"


def test_the_terminal_ignores_a_second_cancelled_answer(terminal: Terminal) -> None:
    """What makes a duplicate `cancelled` harmless (a late copy of the request answered again, or
    one answer per cancel attempt): the second changes no row of the terminal's file."""
    old = record_scan(terminal, "C00001", source="test").request_id
    assert old is not None
    assert reroute_loop(terminal, "LP0", source="test", auth=team_lead(terminal), note="flood").ok
    now = datetime.now(UTC)
    first = apply_upstream_status(terminal, UpstreamStatus("s-1", old, "cancelled", now))
    assert first.note == "cancel confirmed by upstream"

    def rows() -> dict[str, list[tuple[Any, ...]]]:
        tables = ("card", "card_log", "replenishment_request", "request_cancel", "rejected_input")
        return {t: q(terminal.db.path, f"SELECT * FROM {t}") for t in tables}

    before = rows()
    second = apply_upstream_status(terminal, UpstreamStatus("s-2", old, "cancelled", now))
    assert not second.moved and "already confirmed" in second.note
    assert rows() == before
