"""The recorded running time of ended andons: raise to resolve or cancel, as their end row holds it.

An ended andon's duration is what was recorded at its end, counted on the monotonic clock when an
anchor existed (services/andon_elapsed.py): the end row's `elapsed_s` (migration 0012), else a
STOP's `downtime_s` (rows from 0006 on; the same figure for a stop). Re-deriving it from the stored
`resolved_at - raised_at` later would bring back a wall-clock step between raise and end (a CALL
closed 5 minutes after its raise showed "1 h 05 min" after a +1 h NTP step). An andon whose end row
has neither is absent: its readers use the wall difference. Reads only; decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

_ENDED = (
    "SELECT andon_id, coalesce(elapsed_s, downtime_s) FROM card_log "
    "WHERE event IN ('andon_resolved', 'andon_cancelled') AND coalesce(elapsed_s, downtime_s) IS NOT NULL "
    "AND andon_id IN ({marks})"
)


def recorded_raw(raw: Any, andon_ids: Iterable[str]) -> dict[str, float]:
    """Seconds from raise to end recorded for each of `andon_ids` that has a figure, inside a raw
    snapshot (`Database.snapshot()`: no second ORM session for the andon screen's read)."""
    wanted = list(andon_ids)
    if not wanted:
        return {}
    rows = raw.execute(_ENDED.format(marks=", ".join("?" * len(wanted))), wanted).fetchall()
    return {r[0]: float(r[1]) for r in rows}


def recorded_in(session: Session, andon_ids: Iterable[str]) -> dict[str, float]:
    """`recorded_raw` inside the caller's ORM transaction (uses ix_card_log_andon_id)."""
    wanted = list(andon_ids)
    if not wanted:
        return {}
    marks = ", ".join(f":a{i}" for i in range(len(wanted)))
    rows = session.connection().execute(
        text(_ENDED.format(marks=marks)), {f"a{i}": a for i, a in enumerate(wanted)}
    )
    return {a: float(d) for a, d in rows if a is not None and d is not None}
