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
from collections.abc import Sequence

from kanban_terminal.domain.inbound import Refusal
from kanban_terminal.services.signals import SignalRejected
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.rejected_inputs import MQTT_TOTAL as MQTT_TOTAL
from kanban_terminal.storage.rejected_inputs import PER_DOOR as PER_DOOR

log = logging.getLogger(__name__)


def keep_refusals(terminal: Terminal, refusals: Sequence[Refusal]) -> None:
    """Store `refusals` in one unit of work, trim each door to its cap, then log and announce them.

    Raises:
        sqlalchemy.exc.SQLAlchemyError, sqlite3.Error: nothing was stored; the messages must not be
            acknowledged yet (the inbound worker retries).
    """
    if not refusals:
        return
    now = terminal.clock()
    with terminal.db.unit_of_work(fsync=False) as uow:
        for r in refusals:
            uow.rejected.add(at=now, source=r.door, shown=r.input, reason=r.reason)
        uow.rejected.trim({r.door for r in refusals})
    for r in refusals:
        prefix = "status refused" if r.door == "mqtt:status" else "signal refused"
        log.warning("%s on %s: %s", prefix, r.door, r.reason)
        terminal.bus.publish(SignalRejected(r.device, r.reason))
