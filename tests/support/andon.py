"""Test helpers for the andon feature: a controllable wall + monotonic clock and a demo terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal.config import TerminalConfig, demo_config_path, load_config
from kanban_terminal.services.auth import enroll
from kanban_terminal.services.terminal import Terminal

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
TEAM_LEAD = "E2001"
SUPERVISOR = "E3001"
OPERATOR = "E1001"
PIN = "4711"
# Tests enrol with a cheap scrypt cost; the production cost (N=2^17) is exercised once on its own.
TEST_N = 2**10


class FakeClock:
    """Wall clock and monotonic clock that tests move; `step_wall` moves only the wall clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **kwargs: float) -> None:
        delta = timedelta(**kwargs)
        self.now += delta
        self.mono += delta.total_seconds()

    def step_wall(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def demo_config() -> TerminalConfig:
    return load_config(demo_config_path())


def open_terminal(data_dir: Path, clock: FakeClock, config: TerminalConfig | None = None) -> Terminal:
    return Terminal.open(config or demo_config(), data_dir, clock=clock, monotonic=clock.monotonic)


def enrolled(terminal: Terminal, badge: str = TEAM_LEAD, pin: str = PIN) -> Terminal:
    assert enroll(terminal, badge, pin, n=TEST_N) is None
    return terminal
