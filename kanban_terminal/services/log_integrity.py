"""Checking the card log's hash chain over the whole file, the way `verify-log` does.

Streams the stored text straight into `card_log.chain_hash` (no ORM rows: a year is a million rows)
and reports the first row whose hash does not follow from the rows before it. Read-only.
"""

from __future__ import annotations

from sqlalchemy import text

from kanban_terminal.storage.card_log import (
    GENESIS,
    HASHED_FIELDS,
    ChainReport,
    backfill_believable,
    chain_hash,
)
from kanban_terminal.storage.db import Database


def verify_log(db: Database) -> ChainReport:
    """Recompute the chain in id order; `first_broken_id` names the first row that does not match."""
    cols = ", ".join(("id", "occurred_at", "recorded_at", *HASHED_FIELDS, "backfilled", "hash"))
    andon_id = 3 + HASHED_FIELDS.index("andon_id")
    prev, count = GENESIS, 0
    with db.reading() as session:
        result = (
            session.connection()
            .execution_options(stream_results=True)
            .execute(text(f"SELECT {cols} FROM card_log ORDER BY id"))
        )
        for row in result:
            count += 1
            backfilled = bool(row[-2])
            if row[-1] != chain_hash(prev, row[1], row[2], row[3:-2], backfilled=backfilled) or (
                backfilled and not backfill_believable(row[andon_id])
            ):
                return ChainReport(count, row[0])
            prev = row[-1]
    return ChainReport(count, None)
