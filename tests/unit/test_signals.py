"""Bin-signal dedupe, group commit and inbound routing, against a real SQLite file.

Validation itself is the wire schema's: tests/unit/test_wire.py."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.runtime.inbound import _Inbound
from kanban_terminal.services.signals import BinSignal, SignalApplier, SignalRejected
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def signal(
    device: str = "BS00001", boot: str = "b1", seq: int = 1, kind: str = "empty", **over: object
) -> dict:
    data = {"v": 1, "id": f"{device}:{boot}:{seq}", "device": device, "boot": boot, "seq": seq}
    data["type"] = f"bin_{kind}"
    data["at"] = "2026-11-23T09:59:59.000Z"
    data.update(over)
    return data


def raw(data: dict) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    config, _ = make_config(tmp_path, loops=2, cards=5, sensors=10)
    t = Terminal.open(config, tmp_path / "data", clock=lambda: NOW)
    yield t
    t.close()


def db_hash(terminal: Terminal) -> str:
    """Every table but `rejected_input`, which is where refused input goes."""
    con = sqlite3.connect(terminal.db.path)
    digest = hashlib.sha256()
    tables = "SELECT name FROM sqlite_master WHERE type='table' AND name != 'rejected_input' ORDER BY name"
    for (table,) in con.execute(tables):
        for row in con.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
            digest.update(repr(row).encode())
    con.close()
    return digest.hexdigest()


def count(terminal: Terminal, sql: str) -> int:
    con = sqlite3.connect(terminal.db.path)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


def test_duplicates_in_one_group_and_across_groups_raise_one_request(terminal: Terminal) -> None:
    applier = SignalApplier(terminal)
    one = BinSignal("x", "BS00001", "b1", 7, "empty", NOW)
    results = applier.apply([one, one, BinSignal("y", "BS00002", "b1", 7, "empty", NOW)])
    assert [r.duplicate for r in results] == [False, True, False]
    assert results[0].outcome is not None and results[0].outcome.kind is OutcomeKind.REQUEST_RAISED
    assert applier.apply([one])[0].duplicate
    assert count(terminal, "SELECT count(*) FROM replenishment_request WHERE card_id='C00001'") == 1
    assert count(terminal, "SELECT count(*) FROM replenishment_request") == 2


def test_a_rebooted_device_is_heard_again(terminal: Terminal) -> None:
    applier = SignalApplier(terminal)
    applier.apply([BinSignal("a", "BS00001", "boot1", 1, "empty", NOW)])
    applier.apply([BinSignal("b", "BS00001", "boot1", 2, "full", NOW + timedelta(minutes=30))])
    # The device reboots: a new boot id and seq 1 again. Not a duplicate.
    results = applier.apply([BinSignal("c", "BS00001", "boot2", 1, "empty", NOW + timedelta(minutes=40))])
    assert not results[0].duplicate
    assert results[0].outcome is not None and results[0].outcome.kind is OutcomeKind.REQUEST_RAISED
    assert count(terminal, "SELECT count(*) FROM replenishment_request WHERE card_id='C00001'") == 2


def test_events_are_announced_only_after_the_group_commits(terminal: Terminal) -> None:
    seen: list[tuple[str, int]] = []
    terminal.bus.subscribe(
        lambda e: seen.append(
            (type(e).__name__, count(terminal, "SELECT count(*) FROM replenishment_request"))
        )
    )
    SignalApplier(terminal).apply([BinSignal("a", f"BS0000{i}", "b", 1, "empty", NOW) for i in (1, 2, 3)])
    raised = [n for name, n in seen if name == "RequestRaised"]
    # Every RequestRaised saw all three rows committed: none was announced before the commit.
    assert raised == [3, 3, 3]


signal_topic = "kanban/v1/S1/L1/device/BS00001/signal"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.lists(st.binary(max_size=300) | st.builds(lambda d: json.dumps(d).encode(), json_values), max_size=5)
)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_malformed_payloads_change_nothing(terminal: Terminal, payloads: list[bytes]) -> None:
    services = TerminalServices(terminal, None)
    rejected: list[object] = []
    unsubscribe = terminal.bus.subscribe(
        lambda e: rejected.append(e) if isinstance(e, SignalRejected) else None
    )
    before = db_hash(terminal)
    newest = "SELECT coalesce(max(id), 0) FROM rejected_input"  # rows ids; the caps trim the oldest
    kept = count(terminal, newest)
    items = [_Inbound(signal_topic, p, i, 1, 0) for i, p in enumerate(payloads)]
    items.append(_Inbound("kanban/v1/S1/L1/device/NOPE/signal", raw(signal(device="NOPE")), 99, 1, 0))
    services.inbound._handle(items)
    unsubscribe()
    assert db_hash(terminal) == before
    assert len(rejected) == len(items)
    assert count(terminal, newest) == kept + len(items), "each refusal kept in rejected_input"


def test_a_signal_group_waits_for_the_process_write_turn(terminal: Terminal) -> None:
    """The group commit takes the database's write lock (the relay's marks and scans take it too),
    so writers in one process queue on it instead of sleeping in SQLite's busy handler."""
    applier = SignalApplier(terminal)
    done = threading.Event()

    def apply_one() -> None:
        applier.apply([BinSignal("a", "BS00001", "b", 1, "empty", NOW)])
        done.set()

    worker = threading.Thread(target=apply_one)
    with terminal.db.write_lock:
        worker.start()
        worker.join(timeout=0.5)  # not a speed check: the group must not commit while we hold it
        assert not done.is_set()
        assert count(terminal, "SELECT count(*) FROM replenishment_request") == 0
    worker.join(timeout=30)
    assert done.is_set()
    assert count(terminal, "SELECT count(*) FROM replenishment_request") == 1


def test_an_andon_payload_on_the_device_topic_is_routed_to_andon_not_to_the_group(
    terminal: Terminal,
) -> None:
    """Each payload is parsed once and routed by its type: a bin signal raises a request, an andon
    button's payload on the same device topic goes to the andon use case, not to bin validation."""
    services = TerminalServices(terminal, None)
    rejected: list[object] = []
    unsubscribe = terminal.bus.subscribe(
        lambda e: rejected.append(e) if isinstance(e, SignalRejected) else None
    )
    andon = {"v": 1, "id": "BS00002:b1:1", "device": "BS00002", "boot": "b1", "seq": 1}
    andon |= {"type": "andon_cancel", "station": "ST1"}  # this line has no andon reasons configured
    services.inbound._handle(
        [
            _Inbound(signal_topic, raw(signal()), 1, 1, 0),
            _Inbound("kanban/v1/S1/L1/device/BS00002/signal", raw(andon), 2, 1, 0),
        ]
    )
    unsubscribe()
    assert count(terminal, "SELECT count(*) FROM replenishment_request") == 1
    assert count(terminal, "SELECT count(*) FROM andon_signal WHERE id = 'BS00002:b1:1'") == 1
    assert services.signals_applied == 1 and services.signals_refused == 0
    assert not rejected
