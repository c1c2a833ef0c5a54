"""A small replay of the history generator with injected supplier delays and demand spikes (issue 18,
bench/history/disruptions.py): the runway warning fires before the run-out in every injected
disruption the line's own data could foresee, and acting on warnings and reserves cuts stockout
minutes. The full year's figures come from bench/runway_replay.py (docs/BENCHMARKS.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.history.disruptions import replay, warned_before_run_out
from kanban_terminal.config import demo_config_path, load_config

LOOPS = ("ST10-BOLT", "ST20-HARN", "ST30-TUBE", "ST20-RING", "ST30-CALF", "ST10-BB")
"""Supplier, warehouse and supermarket loops, 2 and 3 cards, 30 min to 4 h lead times."""


def test_the_warning_precedes_the_run_out_in_every_foreseeable_injected_disruption() -> None:
    cfg = load_config(demo_config_path())
    cfg = cfg.model_copy(update={"loops": tuple(lp for lp in cfg.loops if lp.id in LOOPS)})
    start = datetime(2025, 12, 1, tzinfo=UTC)
    end = start + timedelta(days=60)
    plans, outcomes, bins = replay(cfg, start, end, seed=6)
    checks = warned_before_run_out(plans, outcomes["plain"], start, end, cfg.runway.settings())
    kinds = {c.disruption.kind for c in checks if c.visible}
    assert kinds == {"delay", "spike"}, "the replay must hold both kinds of disruption, or it proves nothing"
    missed = [(c.disruption, c.run_out) for c in checks if c.visible and c.warned_at is None]
    assert missed == []
    assert all(c.warned_at is not None for c in checks if c.disruption.kind == "delay")
    assert all(c.minutes_ahead is not None and c.minutes_ahead > 0 for c in checks if c.warned_at)
    minutes = {name: sum(o.stockout_min for o in outs) for name, outs in outcomes.items()}
    assert minutes["warnings"] < minutes["plain"]
    assert minutes["both"] <= minutes["warnings"]
    assert bins == {"ST10-BOLT": bins["ST10-BOLT"]} and bins["ST10-BOLT"] >= 1  # the config's red card
