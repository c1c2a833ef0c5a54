"""The broker the tests and benchmarks run is the broker the plant is told to run."""

from __future__ import annotations

from pathlib import Path

from tests.support.mosquitto import PLANT_SETTINGS

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "kanban-plant.conf"


def _settings(text: str) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return {" ".join(line.split()) for line in lines if line and not line.startswith("persistence_location")}


def test_the_shipped_plant_config_is_the_one_the_tests_run() -> None:
    assert _settings(SHIPPED.read_text()) == set(PLANT_SETTINGS)


def test_the_plant_config_persists_and_never_drops_queued_messages() -> None:
    settings = _settings(SHIPPED.read_text())
    assert "persistence true" in settings
    assert "max_queued_messages 1000000" in settings
    assert "set_tcp_nodelay true" in settings
