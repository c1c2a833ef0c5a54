from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, running_mosquitto


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto on a free loopback port, configured as a plant would (persistence on)."""
    with running_mosquitto(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
def mosquitto_defaults(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto with its default queueing and no persistence."""
    with running_mosquitto(tmp_path / "broker-defaults", plant=False) as broker:
        yield broker
