"""The retained health message each terminal publishes, so a line or plant view needs only a subscriber.

Topic (kanban_terminal/topics.py `Topics.terminal_health`), retained, QoS 1, JSON:

    kanban/v1/{site}/{line}/terminal/{terminal}/health

`build_health` is pure (every fact comes in as an argument, the clock too) so the payload is fixed by
tests; `read_health_facts` gathers the database facts; the MQTT link (issue 3) publishes the result on
connect, on change and every minute, and keeps `availability` (its last will) separate: health says how
a terminal is, availability whether it is there at all.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kanban_terminal.domain.text import escape_external
from kanban_terminal.storage import card_reads

if TYPE_CHECKING:
    from kanban_terminal.services.terminal import Terminal

HEALTH_SCHEMA = 1
"""Bumped when a field changes meaning; new fields may be added without a bump."""
QUEUE_AGE_LIMIT = timedelta(minutes=10)
"""A request still unsent after this long makes the terminal `degraded` (the link is not draining)."""
DISK_FREE_LIMIT = 200 * 1024 * 1024
"""Below this free space the terminal reports `degraded` (the same line doctor draws)."""


def _ts(value: datetime | None) -> str | None:
    return (
        None if value is None else value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def build_health(
    *,
    terminal_id: str,
    version: str,
    now: datetime,
    started_at: datetime,
    link_state: str,
    queued: int,
    oldest_queued_at: datetime | None,
    disk_free_bytes: int,
    last_scan_at: datetime | None,
    last_error: str | None,
    last_error_at: datetime | None = None,
    oldest_age_s: float | None = None,
    uptime_s: float | None = None,
    queue_age_limit: timedelta = QUEUE_AGE_LIMIT,
    disk_free_limit: int = DISK_FREE_LIMIT,
) -> dict[str, Any]:
    """The health payload, ready for `json.dumps`.

    Args:
        terminal_id: the terminal's id (also in the topic; repeated so a payload stands alone).
        version: `kanban_terminal.__version__`.
        now: the time of the report (aware).
        started_at: when this process started (aware), for uptime.
        link_state: the MQTT link's state as it names it (e.g. "connected", "reconnecting").
        queued: requests in the outbox not yet acknowledged by the broker.
        oldest_queued_at: when the oldest of those was raised (the stored wall stamp, reported as is).
        disk_free_bytes: free space in the data dir.
        last_scan_at: the newest scan this terminal recorded.
        last_error: the last error worth a person's attention, or None. Escaped here: it may quote input.
        last_error_at: when it happened.
        oldest_age_s: how long the oldest has waited on elapsed time, when the caller counts it (the
            runtime does: runtime/link_age.py); else `now - oldest_queued_at`, which a wall-clock step
            of +1 h turned into 3,610 s and a "degraded" for a request queued 10 s (-1 h: 0 s).
        uptime_s: how long the process has run on elapsed time, when the caller counts it (the health
            publisher does); else `now - started_at`, which read 3,720 s a minute after start past a
            +1 h step and 0 past a -1 h one.
        queue_age_limit: oldest queued age that counts as a problem.
        disk_free_limit: free space below which the disk counts as a problem.

    Returns:
        A dict of JSON types: timestamps as ISO 8601 UTC with `Z`, durations in whole seconds, and a
        `state` of "ok" or "degraded" with the `problems` that made it so.
    """
    if oldest_queued_at is None:
        oldest_age = None
    elif oldest_age_s is None:
        oldest_age = max(0, int((now - oldest_queued_at).total_seconds()))
    else:
        oldest_age = max(0, int(oldest_age_s))
    problems = []
    if link_state != "connected":
        problems.append(f"link {link_state}")
    if oldest_age is not None and oldest_age > queue_age_limit.total_seconds():
        problems.append(f"oldest queued request {oldest_age} s")
    if disk_free_bytes < disk_free_limit:
        problems.append(f"disk free {disk_free_bytes // (1024 * 1024)} MB")
    return {
        "schema": HEALTH_SCHEMA,
        "terminal": terminal_id,
        "version": version,
        "at": _ts(now),
        "started_at": _ts(started_at),
        "uptime_s": max(0, int((now - started_at).total_seconds() if uptime_s is None else uptime_s)),
        "state": "degraded" if problems else "ok",
        "problems": problems,
        "link": link_state,
        "queue": {"requests": queued, "oldest_raised_at": _ts(oldest_queued_at), "oldest_age_s": oldest_age},
        "disk_free_bytes": disk_free_bytes,
        "last_scan_at": _ts(last_scan_at),
        "last_error": None if last_error is None else escape_external(last_error),
        "last_error_at": _ts(last_error_at),
    }


@dataclass(frozen=True)
class HealthFacts:
    """What the database and the disk say; the caller adds link state, uptime and last error."""

    queued: int
    oldest_queued_at: datetime | None
    last_scan_at: datetime | None
    disk_free_bytes: int


def read_health_facts(terminal: Terminal, data_dir: Path) -> HealthFacts:
    """Read the outbox, the newest scan and free disk space for `build_health` (one read snapshot)."""
    queued, oldest, last_scan = card_reads.health(terminal.db)
    return HealthFacts(queued, oldest, last_scan, shutil.disk_usage(data_dir).free)
