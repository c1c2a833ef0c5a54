"""The runtime without a broker: which jobs it starts, that it stops them all, and that it starts once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kanban_terminal.runtime import Runtime
from tests.support.terminals import Clock, open_terminal


def _alive(*names: str) -> set[str]:
    return {t.name for t in threading.enumerate()} & set(names)


def test_an_offline_runtime_runs_escalation_and_the_lost_card_check_and_stops_them(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    try:
        runtime = Runtime(terminal, None)
        assert runtime.jobs() == () and not runtime.started
        with runtime:
            # A short-lived terminal (not long_running) has no WAL checkpointer to start.
            assert runtime.jobs() == ("escalation", "lost-cards", "runway")
            assert _alive("escalation", "lost-cards", "runway") == {"escalation", "lost-cards", "runway"}
            assert runtime.link_state().state == "disabled"
        assert runtime.jobs() == () and _alive("escalation", "lost-cards", "runway") == set()
        with pytest.raises(RuntimeError, match="starts once"):
            runtime.start()
    finally:
        terminal.close()


def test_scans_through_the_runtime_are_recorded_and_published(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    seen: list[object] = []
    terminal.bus.subscribe(seen.append)
    try:
        card = next(iter(terminal.card_loops))
        outcome = Runtime(terminal, None).scan(card, source="serial:ST10")  # never started: no jobs
        assert outcome.accepted and outcome.source == "serial:ST10"
        assert any(getattr(e, "outcome", None) == outcome for e in seen)
    finally:
        terminal.close()
