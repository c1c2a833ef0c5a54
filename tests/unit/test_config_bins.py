"""`[[bins]]` kept small (config_bins.py): the same checks and words as a model, one shared index."""

from __future__ import annotations

import pytest

from kanban_terminal.config import BinSensor, ConfigError, parse_config
from kanban_terminal.config_bins import BinIndex
from tests.support.mqtt_lines import line_config

BASE = line_config(loops=2, cards=5, sensors=0)


def _problems(bins: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(bins + "\n" + BASE, "plant.toml")
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("bins", "expected"),
    [
        # The words every other section uses: pydantic words both differently for a dataclass.
        ('bins = [{device = "D1", card = "C00001", colour = "red"}]',
         "bins[0].colour (line 1): Extra inputs are not permitted"),
        ('bins = ["D1"]', "bins[0] (line 1): Input should be a valid dictionary or instance of BinSensor"),
        ('bins = [{device = "D1"}]', "bins[0].card (line 1): Field required"),
        ('bins = [{device = "D 1", card = "C00001"}]',
         "bins[0].device (line 1): String should match pattern"),
        ('bins = [{device = "D1", card = "C99999"}]',
         "bins[0].card (line 1): unknown card 'C99999': not in any loop"),
    ],
)  # fmt: skip
def test_a_bad_bin_is_reported_as_every_section_reports_its_problems(bins: str, expected: str) -> None:
    problems = _problems(bins)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_bin_is_a_small_frozen_value_with_its_fields() -> None:
    cfg = parse_config('bins = [{device = "D1", bin = "B-07", card = "c00001"}]\n' + BASE)
    sensor = cfg.bins[0]
    assert sensor == BinSensor(device="D1", bin="B-07", card="c00001")
    assert not hasattr(sensor, "__dict__")  # slotted: no dict and no fields-set per bin
    with pytest.raises(AttributeError):
        sensor.card = "C00002"  # type: ignore[misc]


def test_the_index_finds_a_named_bin_else_the_device_s_only_bin() -> None:
    index = BinIndex(
        [
            BinSensor(device="ONE", card="c00001"),
            BinSensor(device="MULTI", bin="A", card="C00002"),
            BinSensor(device="MULTI", bin="B", card="C00003"),
        ]
    )
    assert index.card_of("ONE", None) == "C00001"  # in capitals, as the card table holds it
    assert index.card_of("ONE", "A") == "C00001"  # a one-bin device's signal that names a bin
    assert index.card_of("MULTI", "B") == "C00003"
    assert index.card_of("MULTI", None) is None and index.card_of("MULTI", "C") is None
    assert index.card_of("NONE", None) is None
    assert index.knows_device("ONE") and index.knows_device("MULTI") and not index.knows_device("NONE")
    assert index.knows("ONE", None) and not index.knows("ONE", "A")
    assert index.knows("MULTI", "A") and not index.knows("MULTI", None)
    assert len(index) == 3


def test_a_bin_s_card_is_the_string_its_loop_holds_not_a_second_copy() -> None:
    """TOML's parser makes a new string for every quoted value: a 20,000-bin line held every card id
    twice (1.1 MB) until the bins were pointed at the loops' strings (issue 19, RSS when ready)."""
    cfg = parse_config(line_config(loops=2, cards=5, sensors=10))
    loops = {card: card for loop in cfg.loops for card in loop.card_ids or ()}
    assert len(cfg.bins) == 10
    assert all(b.card is loops[b.card] for b in cfg.bins)
    # A card no loop holds, in another case or of another shape is left as written, for the checks.
    cfg = parse_config('bins = [{device = "D1", card = "c00001"}]\n' + BASE)
    assert cfg.bins[0].card == "c00001"
    problems = _problems('bins = [{device = "D1", card = 7}]')
    assert problems[0].startswith("bins[0].card (line 1): Input should be"), problems
