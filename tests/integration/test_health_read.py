"""The health message's newest scan comes from the card log's index, and says what the card table says.

`card_reads.health` read `max(card.last_scan_at)`: every card's row, once a minute (1.3-1.6 ms of CPU
at 20,000 cards). It now reads the newest row of each scan event through `ix_card_log_event`. That
is only right if every write that sets a card's `last_scan_at` also writes a log row of one of
`SCAN_EVENTS` with the same time, and nothing else does: each door that touches a card runs here on
a real SQLite file, and after each the new read must equal the card table's (and the time of the
last scan, so both cannot be wrong together). The read's plan must search, never scan.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.delivery_issue import record_delivery_issue
from kanban_terminal.services.lost_cards import flag_lost
from kanban_terminal.services.reroute import reroute_loop
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from kanban_terminal.storage import card_reads
from kanban_terminal.storage.card_reads import SCAN_EVENTS
from kanban_terminal.storage.types import from_text
from tests.integration.conftest import Clock
from tests.support.supply_lines import supply_config, team_lead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def terminal(tmp_path: Path, clock: Clock) -> Iterator[Terminal]:
    config, _ = supply_config(tmp_path)
    t = Terminal.open(config, tmp_path / "data", clock=clock)
    yield t
    t.close()


def card_table(terminal: Terminal) -> datetime | None:
    """The read as it was: every card's `last_scan_at`."""
    con = sqlite3.connect(terminal.db.path)
    try:
        (value,) = con.execute("SELECT max(last_scan_at) FROM card").fetchone()
    finally:
        con.close()
    return None if value is None else from_text(value)


def newest_scan(terminal: Terminal) -> datetime | None:
    return card_reads.health(terminal.db)[2]


def agrees(terminal: Terminal, scanned: datetime | None) -> None:
    assert newest_scan(terminal) == card_table(terminal) == scanned


def test_every_door_that_touches_a_card_agrees_with_the_card_table(terminal: Terminal, clock: Clock) -> None:
    agrees(terminal, None)  # nothing scanned yet
    raised = record_scan(terminal, "C00001", source="keyboard")
    assert raised.kind.value == "request_raised" and raised.request_id is not None
    agrees(terminal, clock.now)
    scanned = clock.advance(minutes=1)
    signal = record_scan(terminal, "C00002", source="mqtt:BIN-1", at=clock.now, intent=Intent.EMPTY)
    assert signal.kind.value == "request_raised" and signal.request_id is not None
    agrees(terminal, scanned)

    clock.advance(minutes=1)  # upstream moves a card: not a scan
    assert apply_upstream_status(
        terminal, UpstreamStatus("s1", signal.request_id, "accepted", clock.now)
    ).moved
    agrees(terminal, scanned)
    clock.advance(minutes=1)  # a re-route moves the loop's open requests: not a scan
    assert reroute_loop(terminal, "LP0", source="keyboard", auth=team_lead(terminal), note="flooded").ok
    agrees(terminal, scanned)

    scanned = clock.advance(minutes=30)
    assert record_scan(terminal, "C00001", source="keyboard", confirmed=True).kind.value == "delivered"
    agrees(terminal, scanned)
    scanned = clock.advance(minutes=1)
    short = record_delivery_issue(terminal, "C00001", short=3, damaged=1, source="keyboard", actor="OP1")
    assert short.ok and short.shortfall_request_id is not None
    agrees(terminal, scanned)

    clock.advance(minutes=1)  # the lost-card check flags a card: not a scan
    assert flag_lost(terminal, ["C00003"]) == ["C00003"]
    agrees(terminal, scanned)
    scanned = clock.advance(minutes=1)
    assert record_scan(terminal, "C00003", source="keyboard").kind.value == "found"
    agrees(terminal, scanned)


def test_the_read_searches_indexes_and_scans_no_table(terminal: Terminal) -> None:
    """Every statement `health` runs (traced on the pooled connection it takes), planned on the file."""
    ran: list[str] = []
    traced: list[sqlite3.Connection] = []

    def checkout(dbapi: sqlite3.Connection, _record: Any, _proxy: Any) -> None:
        dbapi.set_trace_callback(ran.append)
        traced.append(dbapi)

    event.listen(terminal.db.read_engine, "checkout", checkout)
    try:
        card_reads.health(terminal.db)
    finally:
        event.remove(terminal.db.read_engine, "checkout", checkout)
        for dbapi in traced:
            dbapi.set_trace_callback(None)
    ran = [sql for sql in ran if sql.lstrip().upper().startswith("SELECT")]
    con = sqlite3.connect(terminal.db.path)
    try:
        steps = [str(r[3]) for sql in ran for r in con.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        con.close()
    assert len(ran) == 2, ran  # the outbox's count and the newest scan
    assert not [s for s in steps if s.startswith("SCAN")], steps
    searches = [s for s in steps if s == "SEARCH card_log USING COVERING INDEX ix_card_log_event (event=?)"]
    assert len(searches) == len(SCAN_EVENTS), steps
