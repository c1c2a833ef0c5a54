"""Which peer availability messages mean "this peer subscribed anew" (adapters/peer_watch.py)."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanban_terminal.adapters.peer_watch import MAX_PEERS, PeerWatch
from kanban_terminal.adapters.takeover import instance_availability

TOPIC = "kanban/v1/S1/upstream/peer/SM1-peer-a/availability"


def online(session: str, connection: int | None, peer: str = "SM1-peer-a") -> bytes:
    return instance_availability("online", peer, session, connection)


def watch() -> tuple[PeerWatch, list[str]]:
    back: list[str] = []
    return PeerWatch(back.append), back


def test_a_new_connection_heard_live_is_a_peer_back_and_its_heartbeats_are_not() -> None:
    w, back = watch()
    assert not w.heard(TOPIC, online("s1", 1), retained=True)  # what stood there when we subscribed
    assert not w.heard(TOPIC, online("s1", 1), retained=False)  # a heartbeat of that connection
    assert w.heard(TOPIC, online("s1", 2), retained=False)  # it reconnected (a broker restart)
    assert not w.heard(TOPIC, online("s1", 2), retained=False)
    assert w.heard(TOPIC, online("s2", 1), retained=False)  # a new process
    assert back == ["SM1-peer-a", "SM1-peer-a"]


def test_a_retained_copy_is_remembered_but_never_a_peer_back() -> None:
    w, back = watch()
    assert not w.heard(TOPIC, online("s1", 3), retained=True)
    assert not w.heard(TOPIC, online("s1", 3), retained=False)
    assert back == []


def test_offline_and_a_peer_without_a_connection_count() -> None:
    w, back = watch()
    assert not w.heard(TOPIC, instance_availability("offline", "SM1-peer-a", "s1", None), retained=False)
    assert w.heard(TOPIC, online("s1", None), retained=False)  # an older peer: seen once
    assert not w.heard(TOPIC, online("s1", None), retained=False)
    assert back == ["SM1-peer-a"]


def test_peers_are_told_apart_and_their_number_is_bounded() -> None:
    w, back = watch()
    for n in range(MAX_PEERS + 10):
        assert w.heard(TOPIC, online("s", 1, peer=f"P{n}"), retained=False)
    assert len(back) == MAX_PEERS + 10 and len(w._seen) == MAX_PEERS


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xfe", b"not json", b"[1, 2]", b'"online"', b"{}", b'{"state": "online"}', b'{"peer": 7}'],
)
def test_a_malformed_availability_is_logged_and_changes_nothing(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    w, back = watch()
    with caplog.at_level(logging.WARNING):
        assert not w.heard(TOPIC, payload, retained=False)
    assert back == [] and w._seen == {}
    assert len(caplog.records) == 1 and TOPIC in caplog.records[0].getMessage()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.binary(max_size=200), st.dictionaries(st.text(max_size=8), st.from_type(object), max_size=6))
)
def test_any_payload_never_raises(payload: object) -> None:
    w, _ = watch()
    raw = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
    assert w.heard(TOPIC, raw, retained=False) in (True, False)
