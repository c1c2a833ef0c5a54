"""Upstream statuses move cards forward only, mark the outbox row done, and log unknown ids."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.adapters.wire import MAX_STATUS_BYTES, UpstreamStatusMessage, validate
from kanban_terminal.adapters.wire.decode import upstream_status
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import UpstreamStatus, apply_upstream_status
from kanban_terminal.storage.card_log import verify_chain
from kanban_terminal.storage.tables import CardLogRow
from tests.support.mqtt_lines import make_config

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
    t = Terminal.open(config, tmp_path / "data", clock=lambda: T0)
    yield t
    t.close()


def status(request_id: str, name: str, minutes: int, eta: str | None = None) -> bytes:
    at = (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"v": 1, "id": str(uuid.uuid4()), "request_id": request_id, "status": name, "at": at, "eta": eta}
    ).encode()


def parse_status(payload: bytes) -> UpstreamStatus | str:
    message = validate(UpstreamStatusMessage, payload, MAX_STATUS_BYTES)
    return message if isinstance(message, str) else upstream_status(message)


def apply(terminal: Terminal, payload: bytes) -> bool:
    parsed = parse_status(payload)
    assert not isinstance(parsed, str), parsed
    return apply_upstream_status(terminal, parsed).moved


def query(terminal: Terminal, sql: str) -> list[tuple]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_statuses_move_the_card_forward_and_never_back(terminal: Terminal) -> None:
    outcome = record_scan(terminal, "C00001", source="test", intent=Intent.EMPTY)
    rid = outcome.request_id
    assert rid is not None
    assert apply(terminal, status(rid, "accepted", 1))
    assert query(terminal, "SELECT publish_state FROM replenishment_request") == [("done",)]
    assert apply(terminal, status(rid, "picked", 2))
    assert apply(terminal, status(rid, "shipped", 3, eta="2026-11-23T10:30:00Z"))
    # A late, older status (redelivery, or the answer to a re-published duplicate) changes nothing.
    assert not apply(terminal, status(rid, "accepted", 1))
    assert not apply(terminal, status(rid, "shipped", 3))
    assert query(terminal, "SELECT state FROM card WHERE id='C00001'") == [("shipped",)]
    assert query(terminal, "SELECT upstream_status, eta FROM replenishment_request") == [
        ("shipped", "2026-11-23T10:30:00.000000Z")
    ]
    events = query(terminal, "SELECT event FROM card_log WHERE card_id='C00001' ORDER BY id")
    assert [e for (e,) in events] == [
        "registered",
        "bin_empty",
        "request_raised",
        "request_sent",  # upstream answered, so the request left (no PUBACK was marked here: issue 17)
        "accepted",
        "picked",
        "shipped",
    ]
    assert query(terminal, "SELECT detail FROM card_log WHERE event = 'shipped'") == [
        ("eta 2026-11-23T10:30:00+00:00",)
    ]
    with terminal.db.reading() as session:
        rows = session.exec(select(CardLogRow).order_by(col(CardLogRow.id))).all()
        assert verify_chain(rows, terminal.db.log_key).ok, "status log rows are chained like every other row"


def test_rejected_closes_the_request_and_leaves_the_bin_empty(terminal: Terminal) -> None:
    rid = record_scan(terminal, "C00002", source="test", intent=Intent.EMPTY).request_id
    assert rid is not None
    assert apply(terminal, status(rid, "rejected", 1))
    assert query(terminal, "SELECT state, open_request_id FROM card WHERE id='C00002'") == [("empty", None)]
    assert query(terminal, "SELECT status, closed_at FROM replenishment_request") == [
        ("rejected", "2026-11-23T10:01:00.000000Z")
    ]


def test_a_status_for_a_delivered_request_is_recorded_but_moves_nothing(terminal: Terminal) -> None:
    rid = record_scan(terminal, "C00003", source="test", intent=Intent.EMPTY).request_id
    assert rid is not None
    record_scan(terminal, "C00003", source="test", intent=Intent.FULL, confirmed=True)
    assert not apply(terminal, status(rid, "shipped", 1))
    assert query(terminal, "SELECT state FROM card WHERE id='C00003'") == [("in_use",)]
    assert query(terminal, "SELECT status, upstream_status, publish_state FROM replenishment_request") == [
        ("delivered", "shipped", "done")
    ]


def test_unknown_request_ids_are_logged_and_change_no_card(terminal: Terminal) -> None:
    assert not apply(terminal, status(str(uuid.uuid4()), "accepted", 1))
    assert query(terminal, "SELECT count(*) FROM rejected_input WHERE source='mqtt:status'") == [(1,)]
    assert query(terminal, "SELECT count(*) FROM card WHERE state != 'in_use'") == [(0,)]


@pytest.mark.parametrize(
    "payload",
    [b"[" * 100_000, b"{}", b'{"v": 1, "status": "lost"}', status("not-a-uuid", "accepted", 1)],
    # Fixed ids: the status carries a fresh uuid4, and pytest-xdist needs the same ids in every worker.
    ids=["deep-nesting", "empty-object", "unknown-status", "request-id-not-a-uuid"],
)
def test_malformed_statuses_are_refused(payload: bytes) -> None:
    assert isinstance(parse_status(payload), str)
