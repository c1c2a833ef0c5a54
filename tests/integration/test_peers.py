"""Several supermarket peers on a real mosquitto: every request picked exactly once (issue 16).

Requests are published as a terminal would, then published AGAIN (the terminal re-sends when a
status is lost): a shared subscription hands many re-sends to the other peer, which must recognise
the request as claimed. Each peer's own SQLite file says what it picked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.peer_settings import PeerOwnership
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, publish_raw, settings_for, wait_for
from tests.support.peers import fast_peer, new_ids, partition_peers, picked_by, request_message

pytestmark = pytest.mark.broker
N = 60


def _send_twice(port: int, ids: list[str], peers: list[UpstreamPeer]) -> None:
    publish_raw(port, [request_message(rid, n) for n, rid in enumerate(ids)])
    wait_for(lambda: sum(p.received for p in peers) == len(ids), what="every request held by one peer")
    seen = sum(p.duplicates + p.not_mine for p in peers)
    # Shifted by one: mosquitto hands a shared subscription's messages round-robin, so the same order
    # would give every re-send to the peer that had the first copy.
    again = [request_message(rid, n, attempt=2) for n, rid in enumerate(ids)]
    publish_raw(port, again[1:] + again[:1], "resender")
    wait_for(
        lambda: sum(p.duplicates + p.not_mine for p in peers) >= seen + len(ids), what="re-sends handled"
    )


def test_two_peers_on_a_shared_subscription_pick_every_request_once_even_when_it_is_sent_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ids = new_ids(N)
    status = Recorder(mosquitto.port, "kanban/v1/S1/+/status", "status-witness")
    settings = settings_for(mosquitto.port)
    with (
        UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "a.db", instance="a") as a,
        UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "b.db", instance="b") as b,
    ):
        wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        _send_twice(mosquitto.port, ids, [a, b])
        wait_for(
            lambda: len({d["request_id"] for _, d, _ in status.messages if d["status"] == "shipped"}) == N
        )
        resent_to_other = a.not_mine + b.not_mine
    picked_a, picked_b = picked_by(tmp_path / "a.db"), picked_by(tmp_path / "b.db")
    status.close()
    assert picked_a & picked_b == set(), "a request picked by both peers"
    assert picked_a | picked_b == set(ids)
    assert picked_a and picked_b, "the shared subscription spread the load"
    assert resent_to_other > 0, "no re-send reached the other peer: the test did not test claims"
    answered_by: dict[str, set[str]] = {}
    for _, d, _ in status.messages:
        answered_by.setdefault(d["request_id"], set()).add(d["by"])
    assert all(len(by) == 1 for by in answered_by.values()), "a request answered by two peers"
    assert {by for s in answered_by.values() for by in s} == {"SM1-peer-a", "SM1-peer-b"}


def test_without_ownership_both_peers_pick_every_request(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The control: two peers each configured to own everything (partition 0 of 1) double every
    pick, so the exactly-once checks above can fail."""
    ids = new_ids(20)
    everything = PeerOwnership(mode="partition", partitions=1, partition=0)
    settings = settings_for(mosquitto.port)
    with (
        UpstreamPeer(settings, "S1", fast_peer(everything), tmp_path / "a.db", instance="a") as a,
        UpstreamPeer(settings, "S1", fast_peer(everything), tmp_path / "b.db", instance="b") as b,
    ):
        wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        publish_raw(mosquitto.port, [request_message(rid, n) for n, rid in enumerate(ids)])
        wait_for(lambda: a.received == b.received == len(ids), what="both received all")
    assert picked_by(tmp_path / "a.db") & picked_by(tmp_path / "b.db") == set(ids)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_partitioned_peers_pick_every_request_once(
    mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    """Partition by config: no shared subscription, no claims, so it holds on 3.1.1-only brokers."""
    ids = new_ids(N)
    settings = settings_for(mosquitto.port, protocol=protocol)
    peers = partition_peers(settings, tmp_path)
    with peers[0] as p0, peers[1] as p1:
        wait_for(lambda: p0.link.subscribed and p1.link.subscribed, what="peers subscribed")
        _send_twice(mosquitto.port, ids, [p0, p1])
        # Each peer heard every request twice, and let the other partition's go.
        wait_for(lambda: p0.not_mine + p1.not_mine == 2 * N, what="each peer heard all, twice")
    picked = [picked_by(tmp_path / f"p{i}.db") for i in range(2)]
    assert picked[0] & picked[1] == set() and picked[0] | picked[1] == set(ids)
    assert picked[0] and picked[1]


def test_claims_pick_once_without_shared_subscriptions(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A broker with no shared subscriptions (ejabberd, MQTT 3.1.1): every peer receives every
    request, and the claims make exactly one of them pick it."""
    ids = new_ids(N)
    settings = settings_for(mosquitto.port, protocol="3.1.1")
    with (
        UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "a.db", instance="a") as a,
        UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "b.db", instance="b") as b,
    ):
        wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        publish_raw(mosquitto.port, [request_message(rid, n) for n, rid in enumerate(ids)])
        wait_for(lambda: a.count_picked() + b.count_picked() == N, what="every request picked")
        claims_a, claims_b = a.claims, b.claims
        assert claims_a is not None and claims_b is not None
        wait_for(lambda: claims_a.lost + claims_b.lost == N, what="every loser gave its copy up")
    picked_a, picked_b = picked_by(tmp_path / "a.db"), picked_by(tmp_path / "b.db")
    assert picked_a & picked_b == set() and picked_a | picked_b == set(ids)


def test_two_peers_with_one_client_id_are_named_in_a_loud_warning(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """mosquitto 2.0.11 closes the old connection without DISCONNECT 0x8E (seen here), so the
    warning comes from the witness: the other session's "online" on our own availability topic."""
    caplog.set_level(logging.WARNING)
    settings = settings_for(mosquitto.port)
    with UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "a.db") as first:
        wait_for(lambda: first.link.subscribed, what="first peer up")
        with UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "b.db") as second:
            wait_for(lambda: first.link.witness.takeovers and second.link.witness.takeovers, what="takeovers")
    warnings = [r.getMessage() for r in caplog.records if "SESSION TAKEN OVER" in r.getMessage()]
    assert any(f"session {second.link.session_id}" in m for m in warnings), warnings
    assert any(f"session {first.link.session_id}" in m for m in warnings), warnings
    assert all("SM1-peer" in m and "--instance" in m for m in warnings)


def test_peers_with_their_own_instance_never_take_each_other_over(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = settings_for(mosquitto.port)
    with (
        UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "a.db", instance="a") as a,
        UpstreamPeer(settings, "S1", fast_peer(), tmp_path / "b.db", instance="b") as b,
    ):
        wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        publish_raw(mosquitto.port, [request_message(rid, n) for n, rid in enumerate(new_ids(10))])
        wait_for(lambda: a.count_picked() + b.count_picked() == 10, what="picked")
        assert (a.link.client_id, b.link.client_id) == ("SM1-peer-a", "SM1-peer-b")
        assert a.link.witness.takeovers == b.link.witness.takeovers == 0
    assert not [r for r in caplog.records if "TAKEN OVER" in r.getMessage()]


def test_a_stopped_peer_leaves_the_share_group_soon_and_takes_no_requests_with_it(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """mosquitto hands a shared subscription's messages round robin to every member whose session
    lives, stopped or not (seen here: a retired instance took a third of the requests and of their
    re-sends). With the shared session expiry short, the live peer soon gets every request."""
    settings = settings_for(mosquitto.port)
    brief = fast_peer(PeerOwnership(shared_session_expiry_s=1))
    with UpstreamPeer(settings, "S1", brief, tmp_path / "a.db", instance="a") as a:
        with UpstreamPeer(settings, "S1", brief, tmp_path / "b.db", instance="b") as b:
            wait_for(lambda: a.link.subscribed and b.link.subscribed, what="peers subscribed")
        # Probes until three in a row reach `a`: round robin gives every other one to b while its
        # session lives, so three in a row means the broker has dropped b from the group.
        in_a_row, probes = 0, 0
        while in_a_row < 3:
            probes += 1
            assert probes < 60, "b's session never left the share group"
            before = a.received
            publish_raw(mosquitto.port, [request_message(new_ids(1)[0], probes)])
            try:
                wait_for(lambda: a.received > before, timeout=1, what="probe at a")  # noqa: B023
                in_a_row += 1
            except AssertionError:
                in_a_row = 0
        ids = new_ids(10)
        publish_raw(mosquitto.port, [request_message(rid, n) for n, rid in enumerate(ids)])
        wait_for(lambda: set(ids) <= picked_by(tmp_path / "a.db"), what="every request with the live peer")
    assert picked_by(tmp_path / "b.db").isdisjoint(ids)
