"""The `[display]` table (display_settings.py): defaults, bounds and typos, through the config loader."""

from __future__ import annotations

import pytest

from kanban_terminal.config import ConfigError, demo_config_path, parse_config

DEMO = demo_config_path().read_text()


def test_defaults_when_the_table_is_absent() -> None:
    cfg = parse_config(DEMO, "plant.toml")
    assert cfg.display.misread_banner_seconds == 30 and cfg.display.live_refresh_seconds == 1


def test_a_plant_sets_how_long_a_misread_stays() -> None:
    cfg = parse_config(DEMO + "\n[display]\nmisread_banner_seconds = 10\n", "plant.toml")
    assert cfg.display.misread_banner_seconds == 10


@pytest.mark.parametrize(
    "line, key",
    [
        ("misread_banner_seconds = 0", "display.misread_banner_seconds"),
        ("live_refresh_seconds = 0.01", "display.live_refresh_seconds"),
        ("misread_banner_secs = 10", "display.misread_banner_secs"),
    ],
)
def test_bad_values_and_typos_are_named_with_their_key(line: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(DEMO + f"\n[display]\n{line}\n", "plant.toml")
    assert any(str(p).startswith(key) for p in info.value.problems), info.value.problems
