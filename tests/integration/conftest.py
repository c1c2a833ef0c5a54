"""A demo-line terminal on a temporary file with a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.config import TerminalConfig, demo_config_path, load_config
from kanban_terminal.services.terminal import Terminal

T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def demo_config() -> TerminalConfig:
    return load_config(demo_config_path())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def open_terminal(
    demo_config: TerminalConfig, tmp_path: Path, clock: Clock
) -> Iterator[Callable[[], Terminal]]:
    opened: list[Terminal] = []

    def _open() -> Terminal:
        terminal = Terminal.open(demo_config, tmp_path / "data", clock=clock)
        opened.append(terminal)
        return terminal

    yield _open
    for terminal in opened:
        terminal.close()
