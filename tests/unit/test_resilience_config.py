"""`[runway]`, `[[reserves]]` and `[quality_stop]` (issue 18): every problem named with its key path and
line, like the rest of the config."""

from __future__ import annotations

import pytest

from kanban_terminal.config import ConfigError, demo_config_path, parse_config

DEMO = demo_config_path().read_text()


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "plant.toml")
    return [str(p) for p in info.value.problems]


def test_the_demo_keeps_one_red_card_and_lets_anyone_stop_for_quality() -> None:
    cfg = parse_config(DEMO)
    assert [(r.loop, r.card_ids) for r in cfg.reserves] == [("ST10-BOLT", ("R10016",))]
    assert cfg.quality_stop.anyone and cfg.quality_stop.reasons == ("QUAL",)


def test_a_reserve_of_an_unknown_loop_is_named_with_its_line() -> None:
    text = DEMO.replace('loop = "ST10-BOLT"\ncard_ids = ["R10016"]', 'loop = "NOPE"\ncard_ids = ["R10016"]')
    line = text.splitlines().index('loop = "NOPE"') + 1
    assert any(
        p.startswith(f"reserves[0].loop (line {line})") and "unknown loop" in p for p in _problems(text)
    )


def test_a_red_card_may_not_be_a_loop_card_or_miss_its_check_character() -> None:
    taken = DEMO.replace('card_ids = ["R10016"]', 'card_ids = ["B1001Z"]')
    assert any("reserves[0].card_ids[0]" in p and "also in ST10-BOLT" in p for p in _problems(taken))
    bad = DEMO.replace('card_ids = ["R10016"]', 'card_ids = ["R10017"]')
    assert any("no valid check character" in p for p in _problems(bad))


def test_quality_stop_reasons_must_exist_and_allow_a_stop() -> None:
    call_only = DEMO.replace('reasons = ["QUAL"]', 'reasons = ["HELP"]')
    assert any("quality_stop.reasons[0]" in p and "does not allow stop" in p for p in _problems(call_only))
    unknown = DEMO.replace('reasons = ["QUAL"]', 'reasons = ["NOPE"]')
    assert any("unknown reason 'NOPE'" in p for p in _problems(unknown))


def test_runway_settings_are_bounded() -> None:
    text = DEMO.replace("margin_lead_times = 1.0", "margin_lead_times = 0")
    assert any(p.startswith("runway.margin_lead_times") for p in _problems(text))
