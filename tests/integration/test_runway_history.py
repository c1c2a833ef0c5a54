"""A pass over some loops reads their open requests through their cards, so a file's closed history
does not slow it (issue 19, runwayhist): it still sees exactly what the whole line's read sees of
those loops, with a long history and with a card the config moved while its request was open. And a
step after most of the line changed runs one full pass. Real SQLite files, the demo line."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.config import TerminalConfig, demo_config_path, parse_config
from kanban_terminal.runtime.runway_job import FULL_SHARE, RunwayJob
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.runway import RunwayMonitor
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import runway_rows
from kanban_terminal.storage.tables import RunwayWarningRow
from tests.support.andon import FakeClock, enrolled, open_terminal

BOLT = "ST10-BOLT"  # 3 cards of 500, 4 h planned lead time; red card R10016
WASH = "ST10-WASH"  # 2 cards, same station
RED = "R10016"


def plant_config(text: str | None = None) -> TerminalConfig:
    cfg = parse_config(text or demo_config_path().read_text(), "plant.toml")
    runway = cfg.runway.model_copy(update={"warnings": True})
    return cfg.model_copy(update={"runway": runway})


def moved_config(card: str) -> TerminalConfig:
    """The demo line with `card` moved from the bolt loop to the washer loop."""
    base = plant_config()
    bolt = [c for c in base.loop(BOLT).card_id_list() if c != card]
    wash = [*base.loop(WASH).card_id_list(), card]
    text = demo_config_path().read_text()
    for cards, prefix, ids in ((3, "B10", bolt), (2, "B11", wash)):
        old = f'cards = {cards}\ncard_prefix = "{prefix}"\n'
        assert text.count(old) == 1
        text = text.replace(old, f"card_ids = {json.dumps(ids)}\n")
    cfg = plant_config(text)
    assert cfg.loop(WASH).card_id_list()[-1] == card and card not in cfg.loop(BOLT).card_id_list()
    return cfg


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def of_loops(facts: runway_rows.RunwayFacts, loops: set[str], reserve: dict[str, str]) -> dict[str, Any]:
    """What a snapshot says of `loops`, in an order-free form."""
    out: dict[str, Any] = {
        k: {lp: v for lp, v in d.items() if lp in loops}
        for k, d in asdict(facts).items()
        if isinstance(d, dict)
    }
    out["arrivals"] = {
        lp: sorted(a, key=lambda x: (x["at"], x["quantity"])) for lp, a in out["arrivals"].items()
    }
    out["drawn"] = sorted((c, r) for c, r in facts.drawn if reserve[c] in loops)
    return out


def deliver_many(terminal: Terminal, clock: FakeClock, cards: tuple[str, ...], rounds: int) -> None:
    """`rounds` times each card emptied and delivered, 3 h a cycle: a loop's closed history."""
    for _ in range(rounds):
        for card in cards:
            assert record_scan(terminal, card, source="keyboard").accepted
            clock.advance(minutes=30)
            assert record_scan(terminal, card, source="keyboard", confirmed=True).accepted
            clock.advance(minutes=30)


def test_a_loop_with_a_long_closed_history_and_a_short_open_episode_is_warned_exactly_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    terminal = enrolled(open_terminal(tmp_path, clock, plant_config()))
    try:
        bolts = terminal.config.loop(BOLT).card_id_list()
        deliver_many(terminal, clock, bolts, rounds=60)  # 180 requests delivered over 7.5 days
        clock.advance(days=2)  # all of it before the runway's window
        monitor = RunwayMonitor(terminal)
        assert monitor.tick() == []
        # Two of three bins emptied 10 min apart, both refills due in about 4 h: at risk.
        assert record_scan(terminal, bolts[0], source="keyboard").accepted
        clock.advance(minutes=10)
        assert record_scan(terminal, bolts[1], source="keyboard").accepted
        assert monitor.tick_loops({BOLT}) == [f"warning {BOLT}"]
        assert monitor.tick_loops({BOLT}) == [] and RunwayMonitor(terminal).tick_loops({BOLT}) == []
        assert monitor.tick() == []
        episodes = runway_rows.episodes(terminal.db)
        assert [(e.loop_id, e.cleared_at) for e in episodes] == [(BOLT, None)]
        with terminal.db.snapshot() as sql:
            closed = sql.execute(
                "SELECT count(*) FROM replenishment_request WHERE loop_id = ? AND closed_at IS NOT NULL",
                (BOLT,),
            ).fetchone()[0]
            calls = sql.execute(
                "SELECT card_id FROM andon WHERE reason = 'MAT' AND station = 'ST10'"
            ).fetchall()
        assert closed == 180
        assert calls == [(bolts[0],)]  # the oldest open request's card is the one to chase
        # What the pass read of the bolt loop is what the whole line's read says of it.
        since = clock.now - terminal.config.runway.settings().window
        full = runway_rows.read_facts(terminal.db, since, terminal.reserve_cards)
        some = runway_rows.read_facts(
            terminal.db,
            since,
            terminal.reserve_cards,
            {BOLT},
            runway_rows.first_log_id(terminal.db, since),
            set(),
        )
        reds = terminal.reserve_cards
        assert len(full.arrivals[BOLT]) == 2 and of_loops(some, {BOLT}, reds) == of_loops(full, {BOLT}, reds)
    finally:
        terminal.close()


def test_a_card_moved_with_its_request_open_is_read_with_the_request_s_loop(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The request keeps its loop when the config moves its card: a read through the bolt loop's cards
    would miss it, so a loop with such a stray is read by loop, as main read every loop."""
    first = open_terminal(tmp_path, clock, plant_config())
    moved = first.config.loop(BOLT).card_id_list()[2]
    assert record_scan(first, moved, source="keyboard").accepted
    assert record_scan(first, RED, source="keyboard").accepted  # a red card's draw in the same loop
    first.close()
    terminal = open_terminal(tmp_path, clock, moved_config(moved))
    try:
        reds = terminal.reserve_cards
        since = clock.now - terminal.config.runway.settings().window
        log_from = runway_rows.first_log_id(terminal.db, since)
        full = runway_rows.read_facts(terminal.db, since, reds)
        assert full.strays == {BOLT: [moved]} and runway_rows.stray_loops(terminal.db) == {BOLT}
        assert full.chase == {BOLT: moved} and full.drawn
        every = {lp.id for lp in terminal.config.loops}
        for loops in ({BOLT}, {WASH}, {BOLT, WASH}, every):
            some = runway_rows.read_facts(terminal.db, since, reds, loops, log_from, {BOLT})
            assert of_loops(some, loops, reds) == of_loops(full, loops, reds), loops
        # Read through its cards only, the bolt loop would lose the moved card's request: the test
        # above would fail without the strays.
        blind = runway_rows.read_facts(terminal.db, since, reds, {BOLT}, log_from, set())
        assert BOLT not in blind.arrivals and blind.drawn == full.drawn
        # A pass over some loops before any full pass finds the strays first (`stray_loops`).
        assert RunwayMonitor(terminal).tick_loops({BOLT}) == [f"reserve {RED}"]
    finally:
        terminal.close()


def test_a_pass_over_some_loops_reads_no_closed_request(tmp_path: Path, clock: FakeClock) -> None:
    """The plans, as SQLite picks them: the loops' cards, then each card's open request through the
    partial index of open requests (closed rows are not in it); never a loop's request history."""
    terminal = open_terminal(tmp_path, clock, plant_config())
    try:
        one = json.dumps([BOLT])
        reads = {
            runway_rows._PROMISES_OF_CARDS: (
                (one, one),
                [
                    "SEARCH c USING INDEX ix_card_loop_id (loop_id=?)",
                    "SEARCH r USING INDEX ux_request_open_card",
                ],
            ),
            runway_rows._PROMISES.format(""): ((), ["SCAN r USING INDEX ux_request_open_card"]),
            runway_rows._STRAYS: ((), ["SCAN r USING INDEX ux_request_open_card"]),
        }
        with terminal.db.snapshot() as sql:
            for text, (args, steps) in reads.items():
                plan = "; ".join(row[-1] for row in sql.execute(f"EXPLAIN QUERY PLAN {text}", args))
                assert all(step in plan for step in steps), plan
                assert "ix_request_loop_raised" not in plan and "ix_request_card_raised" not in plan, plan
    finally:
        terminal.close()


def test_a_step_after_most_of_the_line_changed_runs_one_full_pass(tmp_path: Path, clock: FakeClock) -> None:
    """From three quarters of the loops changed, one full pass is no dearer than a pass over them
    (runtime/runway_job.py) and looks at every loop: a stale episode of an untouched loop is cleared."""
    terminal = open_terminal(tmp_path, clock, plant_config())
    try:
        job = RunwayJob(RunwayMonitor(terminal), terminal.card_loops, 3600.0, monotonic=clock.monotonic)
        assert job.step() == [] and job.passes == {"full": 1, "loops": 0}  # start-up
        loops = terminal.config.loops
        most = math.ceil(FULL_SHARE * len(loops))
        untouched = loops[-1].id
        assert most < len(loops)
        with terminal.db.unit_of_work() as uow:
            runway_rows.add_warning(
                uow.session,
                RunwayWarningRow(loop_id=untouched, raised_at=clock.now, margin_s=1.0, runway_s=0.0),
            )
        assert job.note(CardsChanged(tuple(lp.card_id_list()[0] for lp in loops[: most - 1])))
        assert job.step() == [] and job.passes == {"full": 1, "loops": 1}
        assert job.note(CardsChanged(tuple(lp.card_id_list()[0] for lp in loops[:most])))
        assert job.step() == [f"recovered {untouched}"] and job.passes == {"full": 2, "loops": 1}
    finally:
        terminal.close()
