"""The supermarket peer's refused requests, kept escaped in its own `rejected_input` (capped).

Like a terminal's MQTT doors (docs/PROTOCOL.md "Every refused message is kept"): newest
`REJECTED_KEEP` kept, so a flood of bad requests cannot fill the disk.
"""

from __future__ import annotations

import sqlite3
import time

from kanban_terminal.domain.text import escape_bytes, escape_external

REJECTED_KEEP = 2000
"""Refused requests the peer keeps (newest first), like a terminal's MQTT doors."""


def keep_refused(db: sqlite3.Connection, topic: str, payload: bytes, reason: str) -> None:
    """Keep a refused request, escaped (capped, newest kept).

    Without waiting for the disk: a refusal is a diagnostic, and a flood of bad requests must not
    cost an fsync each (the next fsynced commit writes it too, in order).
    """
    db.execute("PRAGMA synchronous=NORMAL")  # refused inside a transaction: set before BEGIN
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO rejected_input (at, source, input, reason) VALUES (?, ?, ?, ?)",
            (time.time(), f"mqtt:{escape_external(topic, 120)}", escape_bytes(payload, 300), reason),
        )
        db.execute(
            "DELETE FROM rejected_input WHERE id <= (SELECT max(id) FROM rejected_input) - ?",
            (REJECTED_KEEP,),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    finally:
        db.execute("PRAGMA synchronous=FULL")
