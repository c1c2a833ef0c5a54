"""Keeping refused inbound messages for maintenance: `kanban-terminal rejected` lists them.

The wire schema (adapters/wire) refuses a message with its door and reason; this module keeps it,
escaped, in `rejected_input`, logs it, and tells the screens (`SignalRejected`). A group of refusals
is one transaction, written without waiting for the disk (`fsync=False`): a refusal is a diagnostic,
and a flood of bad messages must cost the line neither an fsync each nor unbounded disk.

Bounded: each door (`mqtt:device/<id>`, `mqtt:status`, ...) keeps its newest `PER_DOOR` refusals, and
all MQTT doors together their newest `MQTT_TOTAL`. So one flooding device can hold at most
`PER_DOOR` rows and push out nothing of the other doors; a flood over many made-up device ids is
held at `MQTT_TOTAL` rows. Refused scans (operator input, from `scanning.py`) are not capped here.

It must not validate: what is refused, and why, is the wire schema's call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from kanban_terminal.domain.inbound import Refusal
from kanban_terminal.services.signals import SignalRejected
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.scan_repo import driver
from kanban_terminal.storage.types import to_text

log = logging.getLogger(__name__)

PER_DOOR = 200
"""Newest refusals kept per door: enough to see what a device keeps sending wrong."""
MQTT_TOTAL = 2000
"""Newest refusals kept over every MQTT door together."""
MQTT_DOORS = "mqtt:%"


def keep_refusals(terminal: Terminal, refusals: Sequence[Refusal]) -> None:
    """Store `refusals` in one transaction, trim each door to its cap, then log and announce them.

    Raises:
        sqlalchemy.exc.SQLAlchemyError, sqlite3.Error: nothing was stored; the messages must not be
            acknowledged yet (the inbound worker retries).
    """
    if not refusals:
        return
    at = to_text(terminal.clock())
    with terminal.db.write_connection(fsync=False) as conn:
        db = driver(conn)
        db.executemany(
            "INSERT INTO rejected_input (at, source, input, reason) VALUES (?, ?, ?, ?)",
            [(at, r.door, r.input, r.reason) for r in refusals],
        )
        trim(db, {r.door for r in refusals})
    for r in refusals:
        prefix = "status refused" if r.door == "mqtt:status" else "signal refused"
        log.warning("%s on %s: %s", prefix, r.door, r.reason)
        terminal.bus.publish(SignalRejected(r.device, r.reason))


def trim(db: Any, doors: Iterable[str]) -> None:
    """Keep each of `doors` to its newest `PER_DOOR` rows and the MQTT doors to `MQTT_TOTAL`.

    `db` is the driver connection of the open write transaction. Two indexed-by-rowid deletes;
    the subqueries scan `rejected_input`, which these caps keep small.
    """
    for door in doors:
        db.execute(
            "DELETE FROM rejected_input WHERE source = ?1 AND id < (SELECT id FROM rejected_input "
            "WHERE source = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            (door, PER_DOOR - 1),
        )
    db.execute(
        "DELETE FROM rejected_input WHERE source LIKE ?1 AND id < (SELECT id FROM rejected_input "
        "WHERE source LIKE ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        (MQTT_DOORS, MQTT_TOTAL - 1),
    )
