"""Every request that left the terminal has its "request sent" row, once (issue 17).

In the crash soak, requests that upstream had received had no `request_sent` row: the broker's
acknowledgement was marked only after the card had moved on (its full bin was already signalled,
or upstream had already answered), and the row was written only for a card still queued on the
request. The acknowledgement is a fact about the request, whatever the card did meanwhile: the row
is written when the request's first acknowledgement is recorded, or when upstream's first answer
shows it arrived before that; never twice.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.outbox import mark_acknowledged
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from tests.support.mqtt_lines import make_config

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def terminal(tmp_path: Path) -> Terminal:
    config, _ = make_config(tmp_path, loops=1, cards=3, sensors=0)
    t = Terminal.open(config, tmp_path / "data", clock=lambda: T0)
    yield t
    t.close()


def rows(terminal: Terminal, card: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(terminal.db.path) as con:
        return con.execute(
            "SELECT event, from_state, to_state, request_id, detail FROM card_log WHERE card_id = ? "
            "ORDER BY id",
            (card,),
        ).fetchall()


def acknowledge(terminal: Terminal, request_id: str) -> None:
    """What the relay does with a PUBACK: mark it in one unit of work."""
    with terminal.db.unit_of_work() as uow:
        mark_acknowledged(uow, [request_id], T0 + timedelta(seconds=5))


def test_a_request_delivered_before_its_acknowledgement_is_marked_still_gets_its_sent_row(
    terminal: Terminal,
) -> None:
    raised = record_scan(terminal, "C00001", source="mqtt:BS00001", intent=Intent.EMPTY, at=T0)
    assert raised.request_id is not None
    # The full bin is signalled before the relay's PUBACK batch commits (the soak's case).
    at = T0 + timedelta(seconds=2)
    full = record_scan(terminal, "C00001", source="mqtt:BS00001", intent=Intent.FULL, at=at, confirmed=True)
    assert full.kind.value == "delivered", full
    acknowledge(terminal, raised.request_id)
    acknowledge(terminal, raised.request_id)  # a re-published copy acknowledged again: no second row
    events = rows(terminal, "C00001")
    sent = [r for r in events if r[0] == "request_sent"]
    assert len(sent) == 1, events
    event, from_state, to_state, request_id, detail = sent[0]
    assert request_id == raised.request_id
    assert (from_state, to_state) == (None, None)  # the card was not moved by it: it was delivered
    assert "broker acknowledged" in str(detail) and "delivered" in str(detail)
    assert verify_log(terminal.db).ok


def test_an_answer_before_the_acknowledgement_writes_the_sent_row_first(terminal: Terminal) -> None:
    raised = record_scan(terminal, "C00002", source="keyboard", intent=Intent.EMPTY, at=T0)
    assert raised.request_id is not None
    # The process died after publishing and before marking; upstream answered the first copy.
    answer = UpstreamStatus("st-1", raised.request_id, "accepted", T0 + timedelta(seconds=3), by="SM1")
    assert apply_upstream_status(terminal, answer).moved
    acknowledge(terminal, raised.request_id)  # the PUBACK of the re-published copy
    events = [(e, f, t) for e, f, t, _, _ in rows(terminal, "C00002")]
    assert events[-4:] == [
        ("bin_empty", "in_use", "empty"),
        ("request_raised", "empty", "queued"),
        ("request_sent", "queued", "sent"),
        ("accepted", "sent", "accepted"),
    ]
    assert verify_log(terminal.db).ok


def test_a_request_still_queued_moves_its_card_to_sent_as_before(terminal: Terminal) -> None:
    raised = record_scan(terminal, "C00003", source="keyboard", intent=Intent.EMPTY, at=T0)
    assert raised.request_id is not None
    acknowledge(terminal, raised.request_id)
    acknowledge(terminal, raised.request_id)
    sent = [r for r in rows(terminal, "C00003") if r[0] == "request_sent"]
    assert [(r[1], r[2]) for r in sent] == [("queued", "sent")]
