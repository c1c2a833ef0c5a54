"""Issue 16's pure parts: ownership settings, node rotation, the takeover witness, the reconciler."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from kanban_terminal.adapters.takeover import SessionWitness
from kanban_terminal.broker_urls import NodeRotation
from kanban_terminal.domain.scans import Intent
from kanban_terminal.peer_settings import PeerOwnership, parse_partition
from kanban_terminal.services.reconcile import Reconciler
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config
from tests.unit.test_relay_upstream_status import apply, status

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_partitions_split_every_loop_to_exactly_one_peer() -> None:
    peers = [PeerOwnership(mode="partition", partitions=3, partition=i) for i in range(3)]
    loops = [(line, f"LP{n}") for line in ("L1", "L2") for n in range(50)]
    for loop in loops:
        assert sum(p.owns_loop(*loop) for p in peers) == 1
    assert all(any(p.owns_loop(*loop) for loop in loops) for p in peers), "every peer gets a share"
    assert PeerOwnership().owns_loop("L1", "LP0"), "claim mode: every peer may claim any loop"


@pytest.mark.parametrize("text", ["2/2", "x/2", "1", "0/0", "-1/2"])
def test_a_bad_partition_is_refused_with_the_form_it_needs(text: str) -> None:
    with pytest.raises(ValueError, match="I/N"):
        parse_partition(text)
    assert parse_partition("1/3") == (1, 3)
    with pytest.raises(ValidationError, match="partition 3 does not exist"):
        PeerOwnership(mode="partition", partitions=3, partition=3)


def test_nodes_rotate_from_the_second_attempt_on() -> None:
    rotation = NodeRotation(("a", 1), (("b", 2), ("c", 3)))
    assert [rotation.next_node() for _ in range(5)] == [None, ("b", 2), ("c", 3), ("a", 1), ("b", 2)]
    alone = NodeRotation(("a", 1), ())
    assert [alone.next_node() for _ in range(3)] == [None, None, None]


def _availability(session: str, state: str = "online") -> bytes:
    return json.dumps({"session": session, "state": state, "host": "pc7", "pid": 42}).encode()


def test_the_witness_names_the_other_instance_and_ignores_its_own(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    now = [100.0]
    witness = SessionWitness("SM1-peer", "mine", monotonic=lambda: now[0])
    witness.seen(_availability("mine"))
    witness.after_disconnect(SimpleNamespace(value=0x80), "h", 1)  # an ordinary loss
    assert witness.takeovers == 0 and not caplog.records
    witness.seen(_availability("theirs"), retained=True)  # maybe a crashed run of ours: no warning yet
    assert not caplog.records and "session theirs, host pc7, pid 42" in witness.other
    witness.after_disconnect(SimpleNamespace(value=0x80), "h", 1)  # dropped right after: a takeover
    assert witness.takeovers == 1 and "SESSION TAKEN OVER" in caplog.records[-1].getMessage()
    assert "session theirs" in caplog.records[-1].getMessage()
    now[0] += 60
    witness.after_disconnect(SimpleNamespace(value=0x80), "h", 1)  # long after: a plain loss
    witness.after_disconnect(SimpleNamespace(value=0x8E), "h", 1)  # the MQTT 5 reason says it
    assert witness.takeovers == 2 and "0x8E" in caplog.records[-1].getMessage()
    witness.seen(_availability("third"))  # live, while we are connected: warned at once
    assert "another instance uses MQTT client id SM1-peer" in caplog.records[-1].getMessage()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
    now = [T0]
    t = Terminal.open(config, tmp_path / "data", clock=lambda: now[0])
    t.now = now  # type: ignore[attr-defined]
    yield t
    t.close()


def test_the_reconciler_asks_once_per_bound_for_stale_open_requests_only(terminal: Terminal) -> None:
    waiting = record_scan(terminal, "C00001", source="test", intent=Intent.EMPTY).request_id
    shipped = record_scan(terminal, "C00002", source="test", intent=Intent.EMPTY).request_id
    record_scan(terminal, "C00003", source="test", intent=Intent.EMPTY)  # never published: the relay's
    assert waiting and shipped
    assert apply(terminal, status(waiting, "accepted", 1))
    assert apply(terminal, status(shipped, "shipped", 1))
    asked: list[list[str]] = []
    timer = [0.0]
    connected = [True]
    reconciler = Reconciler(
        terminal, asked.append, after=timedelta(minutes=2), connected=lambda: connected[0],
        timer=lambda: timer[0],
    )  # fmt: skip
    terminal.now[0] = T0 + timedelta(minutes=2)  # type: ignore[attr-defined]
    assert reconciler.step() == 0, "heard from 1 min ago: not stale"
    terminal.now[0] = T0 + timedelta(minutes=4)  # type: ignore[attr-defined]
    assert reconciler.step() == 1 and asked == [[waiting]]
    assert reconciler.step() == 0, "asked again only a bound later"
    timer[0] += 120
    connected[0] = False
    assert reconciler.step() == 0, "no query to a broker we cannot reach"
    connected[0] = True
    assert reconciler.step() == 1 and asked[-1] == [waiting]
    assert apply(terminal, status(waiting, "shipped", 5))
    timer[0] += 120
    assert reconciler.step() == 0, "shipped: nothing left to ask"
