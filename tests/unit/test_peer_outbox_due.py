"""When the supermarket peer's thread wakes by the clock alone (adapters/peer_outbox.py `next_due`).

A refused status is retried `RETRY_REFUSED_S` later. Once that time has passed, the retry waits for
room in the window or a reconnect (both wake the peer), or its answer is gone (a cancel deleted it):
counting it as "due" made the peer's thread spin at its 1 ms floor (review of branch claimcancel)."""

from __future__ import annotations

import sqlite3

from kanban_terminal.adapters.peer_outbox import StatusOutbox
from kanban_terminal.adapters.upstream import _SCHEMA


def outbox() -> StatusOutbox:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(_SCHEMA)  # the peer's own tables
    return StatusOutbox(db, link=None)  # type: ignore[arg-type]  # next_due reads no link


def test_a_refused_retry_already_past_is_not_a_reason_to_wake() -> None:
    box = outbox()
    box._refused_until[("R1", "picked")] = 100.0
    assert box.next_due(now=101.0) is None
    box._refused_until[("R2", "picked")] = 130.0
    assert box.next_due(now=101.0) == 130.0


def test_the_earliest_unsent_answer_still_to_come_wakes_the_peer() -> None:
    box = outbox()
    box.db.executemany(
        "INSERT INTO answer (request_id, stage, due, sent) VALUES (?, ?, ?, ?)",
        [("R1", "accepted", 90.0, 0), ("R2", "picked", 120.0, 0), ("R3", "shipped", 110.0, 1)],
    )
    assert box.next_due(now=100.0) == 120.0
