from __future__ import annotations

from pathlib import Path

import pytest

from kanban_terminal.config import ConfigError, demo_config_path, load_config, parse_config

DEMO = demo_config_path().read_text()


def test_demo_config_is_a_realistic_line() -> None:
    cfg = load_config(demo_config_path())
    cards = [c for loop in cfg.loops for c in loop.card_id_list()]
    assert len(cfg.stations) >= 3 and len(cfg.parts) >= 15 and 35 <= len(cards) <= 45
    assert len(set(cards)) == len(cards)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "plant.toml")
    return [str(p) for p in info.value.problems]


def test_every_problem_is_reported_with_key_path_and_line() -> None:
    text = DEMO.replace("container_quantity = 500", "container_quantity = -5", 1)
    text = text.replace('part = "100-2245"', 'part = "999-0000"', 1)
    text = text.replace('[terminal]\nid = "L1-T1"', '[terminal]\nid = "L1 T1"', 1)
    problems = _problems(text)
    line_of = {ln: i for i, ln in enumerate(text.splitlines(), 1)}
    assert any(
        p.startswith(f"loops[0].container_quantity (line {line_of['container_quantity = -5']})")
        for p in problems
    ), problems
    assert any(p.startswith("terminal.id (line") for p in problems), problems
    # Cross-checks run only once the file parses into models, so fix the schema errors and look again.
    text = text.replace("container_quantity = -5", "container_quantity = 500").replace('"L1 T1"', '"L1-T1"')
    problems = _problems(text)
    assert any("loops[1].part (line" in p and "unknown part '999-0000'" in p for p in problems), problems


def test_unknown_keys_are_refused_so_typos_do_not_pass_silently() -> None:
    problems = _problems(DEMO.replace("debounce_seconds = 3", "debounce_secs = 3"))
    assert any(p.startswith("terminal.debounce_secs") for p in problems)


def test_toml_syntax_error_names_the_line() -> None:
    problems = _problems(DEMO + "\n[[loops]\n")
    assert len(problems) == 1 and "not valid TOML" in problems[0] and "(line " in problems[0]


def test_duplicate_cards_and_bad_prefix_are_named() -> None:
    text = DEMO.replace('card_prefix = "B11"', 'card_prefix = "B10"', 1)
    assert any("also in loop ST10-BOLT" in p for p in _problems(text))
    text = DEMO.replace('card_prefix = "B11"', 'card_prefix = "A-1"', 1)
    assert any(p.startswith("loops[1].card_prefix") for p in _problems(text))


def test_printed_ids_without_check_character_need_the_check_turned_off() -> None:
    loop = '\ncards = 3\ncard_prefix = "B10"\n'
    text = DEMO.replace(loop, '\ncard_ids = ["OLD-0001", "OLD-0002"]\n', 1)
    assert any("no valid check character" in p for p in _problems(text))
    cfg = parse_config(text.replace("require_check_character = true", "require_check_character = false"))
    assert cfg.loops[0].card_id_list() == ("OLD-0001", "OLD-0002")


def test_missing_file_is_a_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "file not found" in str(info.value)


def test_a_100000_deep_toml_array_is_a_config_problem_not_a_crash(tmp_path: Path) -> None:
    """Before (issue 17): tomllib's RecursionError reached the CLI's last line of defence, exit 70."""
    import subprocess
    import sys

    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(deep)
    assert "nested too deeply" in str(err.value)
    done = subprocess.run([sys.executable, "-m", "kanban_terminal", "check-config", str(deep)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "nested too deeply" in done.stdout + done.stderr, done
    assert "Traceback" not in done.stderr and "unexpected error" not in done.stderr
    from firmware_bridge.config import ConfigError as BridgeConfigError
    from firmware_bridge.config import load_config as load_bridge_config

    with pytest.raises(BridgeConfigError, match="nested too deeply"):
        load_bridge_config(deep)


def test_a_copied_loop_with_another_lead_time_has_its_own_terms() -> None:
    """`Loop.terms` is cached by value, not on the model: a copy with another lead time (pydantic's
    `model_copy` carries a property cache over) must plan with its own."""
    loop = load_config(demo_config_path()).loops[0]
    planned = loop.terms.planned_lead_time
    other = loop.model_copy(update={"lead_time_minutes": loop.lead_time_minutes * 2})
    assert other.terms.planned_lead_time == planned * 2
    assert loop.terms.planned_lead_time == planned


def test_a_part_is_found_by_number_also_in_a_copy_with_other_parts() -> None:
    from kanban_terminal.config import Part

    cfg = load_config(demo_config_path())
    for part in cfg.parts:
        assert cfg.part(part.number) is part
    with pytest.raises(KeyError):
        cfg.part("no-such-part")
    # A copy with other parts answers from its own (model_copy copies what the first one cached).
    number = cfg.parts[0].number
    other = cfg.model_copy(update={"parts": (Part(number=number, description="Other bolt"),)})
    assert other.part(number).description == "Other bolt"
    assert cfg.part(number).description != "Other bolt"
    # What was cached is no field: equality and dumps are as before the look-up.
    fresh = load_config(demo_config_path())
    assert cfg == fresh and cfg.model_dump() == fresh.model_dump()
