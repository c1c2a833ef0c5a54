"""The read behind the terminal's status reconciliation (services/reconcile.py).

One indexed read of the outbox: the open requests upstream may know about (published or answered)
that have not reached their last upstream stage (shipped), and whose newest word from upstream (or
their last publish, when upstream said nothing yet) is older than a bound. A terminal has at most one
open request per card, so this is at most a line's card count of rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kanban_terminal.storage.types import to_text


def stale_open_requests(sql: Any, heard_before: datetime, limit: int = 1000) -> list[str]:
    """Ids of open requests whose last status (or publish) is older than `heard_before`, oldest first."""
    rows = sql.execute(
        "SELECT id FROM replenishment_request WHERE closed_at IS NULL "
        "AND publish_state IN ('published', 'done') "
        "AND coalesce(upstream_status, '') NOT IN ('shipped', 'rejected') "
        "AND coalesce(upstream_at, last_published_at, raised_at) < ? "
        "ORDER BY coalesce(upstream_at, last_published_at, raised_at) LIMIT ?",
        (to_text(heard_before), limit),
    ).fetchall()
    return [str(r[0]) for r in rows]
