"""Terminals on real SQLite files with a clock the test controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal.config import TerminalConfig, demo_config_path, load_config
from kanban_terminal.services.terminal import Terminal

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START
    ids: list[str] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def demo_config() -> TerminalConfig:
    return load_config(demo_config_path())


def open_terminal(data_dir: Path, clock: Clock, config: TerminalConfig | None = None) -> Terminal:
    return Terminal.open(config or demo_config(), data_dir, clock=clock)
