"""The retained health payload: fixed by its inputs, JSON-ready, escaped, with a plain ok/degraded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal import __version__
from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.services.health import build_health, read_health_facts
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _health(**overrides: object) -> dict[str, object]:
    facts: dict[str, object] = {
        "terminal_id": "L1-T1",
        "version": "1.2.3",
        "now": NOW,
        "started_at": NOW - timedelta(hours=2, seconds=5),
        "link_state": "connected",
        "queued": 0,
        "oldest_queued_at": None,
        "disk_free_bytes": 5 * 1024**3,
        "last_scan_at": NOW - timedelta(minutes=3),
        "last_error": None,
    }
    return build_health(**{**facts, **overrides})  # type: ignore[arg-type]


def test_a_healthy_terminal() -> None:
    assert _health() == {
        "schema": 1,
        "terminal": "L1-T1",
        "version": "1.2.3",
        "at": "2026-03-02T08:00:00Z",
        "started_at": "2026-03-02T05:59:55Z",
        "uptime_s": 7205,
        "state": "ok",
        "problems": [],
        "link": "connected",
        "queue": {"requests": 0, "oldest_raised_at": None, "oldest_age_s": None},
        "disk_free_bytes": 5 * 1024**3,
        "last_scan_at": "2026-03-02T07:57:00Z",
        "last_error": None,
        "last_error_at": None,
    }


def test_degraded_names_every_problem_and_escapes_the_error() -> None:
    health = _health(
        link_state="reconnecting",
        queued=4,
        oldest_queued_at=NOW - timedelta(minutes=25),
        disk_free_bytes=50 * 1024 * 1024,
        last_error="bad frame \x1b[2J from bin-07",
        last_error_at=NOW - timedelta(seconds=30),
    )
    assert health["state"] == "degraded"
    assert health["problems"] == ["link reconnecting", "oldest queued request 1500 s", "disk free 50 MB"]
    assert health["queue"] == {
        "requests": 4,
        "oldest_raised_at": "2026-03-02T07:35:00Z",
        "oldest_age_s": 1500,
    }
    assert health["last_error"] == "bad frame \\x1b[2J from bin-07"
    assert json.loads(json.dumps(health)) == health


def test_a_request_queued_briefly_is_not_a_problem() -> None:
    health = _health(queued=1, oldest_queued_at=NOW - timedelta(seconds=40))
    assert health["state"] == "ok" and health["queue"]["oldest_age_s"] == 40  # type: ignore[index]


def test_facts_come_from_the_database(tmp_path: Path) -> None:
    now = [NOW]
    terminal = Terminal.open(load_config(demo_config_path()), tmp_path, clock=lambda: now[0])
    try:
        assert read_health_facts(terminal, tmp_path).queued == 0
        record_scan(terminal, "B1001Z", source="cli")
        now[0] += timedelta(minutes=5)
        record_scan(terminal, "B1101T", source="cli")
        facts = read_health_facts(terminal, tmp_path)
    finally:
        terminal.close()
    assert facts.queued == 2
    assert facts.oldest_queued_at is not None and facts.oldest_queued_at.tzinfo is not None
    assert facts.last_scan_at is not None and facts.last_scan_at > facts.oldest_queued_at
    assert facts.disk_free_bytes > 0
    health = _health(version=__version__, **facts.__dict__)
    assert health["queue"]["requests"] == 2  # type: ignore[index]
