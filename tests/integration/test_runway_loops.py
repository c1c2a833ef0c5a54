"""The runway pass after a card change looks at the changed cards' loops only; the timed pass at every
loop (issue 19: the full pass after every change was a quarter of `serve`'s CPU at 5 signals/s).
Real SQLite files, the real runtime where the wiring matters."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.config import TerminalConfig
from kanban_terminal.runtime import Runtime, RuntimeOptions
from kanban_terminal.runtime.runway_job import RunwayJob
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.runway import RunwayMonitor
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.supplier_trouble import SupplierWarned
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import runway_rows
from kanban_terminal.storage.tables import RunwayWarningRow
from tests.support.andon import FakeClock, demo_config, enrolled, open_terminal
from tests.support.mqtt_lines import wait_for

BOLT = "ST10-BOLT"  # 3 cards of 500, 4 h planned lead time; red card R10016
WASH = "ST10-WASH"  # another loop of the same station
RED = "R10016"


def plant_config(check_seconds: float = 30.0) -> TerminalConfig:
    cfg = demo_config()
    runway = cfg.runway.model_copy(update={"warnings": True, "check_seconds": check_seconds})
    return cfg.model_copy(update={"runway": runway})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, clock, plant_config()))
    yield t
    t.close()


def run_short(terminal: Terminal, clock: FakeClock) -> None:
    """Two of the bolt loop's three bins emptied 10 min apart: one full bin lasts 2.4 h at the
    planned 208/h, both refills are due in about 4 h: at risk."""
    cards = terminal.config.loop(BOLT).card_id_list()
    record_scan(terminal, cards[0], source="keyboard")
    clock.advance(minutes=10)
    record_scan(terminal, cards[1], source="keyboard")


def plant_warning(terminal: Terminal, loop_id: str, clock: FakeClock) -> None:
    """An open episode for a loop that is not at risk: only a pass over that loop clears it."""
    with terminal.db.unit_of_work() as uow:
        runway_rows.add_warning(
            uow.session, RunwayWarningRow(loop_id=loop_id, raised_at=clock.now, margin_s=1.0, runway_s=0.0)
        )


def open_episodes(terminal: Terminal) -> set[str]:
    return {e.loop_id for e in runway_rows.episodes(terminal.db) if e.cleared_at is None}


def test_a_pass_over_the_changed_loop_warns_it_and_leaves_the_other_loops_to_the_full_pass(
    terminal: Terminal, clock: FakeClock
) -> None:
    monitor = RunwayMonitor(terminal)
    assert monitor.tick() == []  # where the window's card-log rows start is found here, before the scans
    plant_warning(terminal, WASH, clock)
    run_short(terminal, clock)
    assert monitor.tick_loops({WASH, "NO-SUCH-LOOP"}) == [f"recovered {WASH}"]
    plant_warning(terminal, WASH, clock)
    assert monitor.tick_loops({BOLT}) == [f"warning {BOLT}"]
    # The washer loop's episode would be closed by any pass that looked at it: this one did not.
    assert open_episodes(terminal) == {BOLT, WASH}
    # Exactly once per episode, whichever pass and whichever monitor (a second process) runs next.
    assert monitor.tick_loops({BOLT}) == [] and RunwayMonitor(terminal).tick_loops({BOLT}) == []
    assert monitor.tick() == [f"recovered {WASH}"]
    assert open_episodes(terminal) == {BOLT} and len(runway_rows.episodes(terminal.db)) == 3
    assert monitor.tick_loops(set()) == []


def test_a_red_card_drawn_is_called_once_by_the_pass_over_its_loop(terminal: Terminal) -> None:
    assert record_scan(terminal, RED, source="keyboard").accepted
    monitor = RunwayMonitor(terminal)
    assert monitor.tick_loops({WASH}) == []  # not the red card's loop: its draw is not read
    assert monitor.tick_loops({BOLT}) == [f"reserve {RED}"]
    assert monitor.tick_loops({BOLT}) == [] and monitor.tick() == []
    with terminal.db.snapshot() as sql:
        calls = sql.execute("SELECT count(*) FROM andon WHERE card_id = ? AND reason = 'MAT'", (RED,))
        assert calls.fetchone() == (1,)


def test_the_facts_of_some_loops_are_the_full_snapshot_s_facts_of_those_loops(
    terminal: Terminal, clock: FakeClock
) -> None:
    # Log rows out of time order: the first one written dated after rows written later (a device
    # clock ahead; the window's earliest row is not its lowest id), the last one before the window.
    ahead_at = clock.now + timedelta(hours=9, minutes=5)
    ahead = record_scan(terminal, terminal.config.loop(BOLT).card_id_list()[2], source="x", at=ahead_at)
    assert ahead.accepted
    clock.advance(hours=9)
    run_short(terminal, clock)
    record_scan(terminal, RED, source="keyboard")
    record_scan(
        terminal, terminal.config.loop(WASH).card_id_list()[1], source="x", at=clock.now - timedelta(hours=9)
    )
    for loop in terminal.config.loops[2:6]:
        record_scan(terminal, loop.card_id_list()[0], source="keyboard")
        clock.advance(minutes=3)
    RunwayMonitor(terminal).tick()  # warnings open, the red card's call raised
    since = clock.now - terminal.config.runway.settings().window
    full = runway_rows.read_facts(terminal.db, since, terminal.reserve_cards)
    log_from = runway_rows.first_log_id(terminal.db, since)
    assert full.in_use and full.empties and full.arrivals and full.open_warnings

    def of(facts: runway_rows.RunwayFacts, loops: set[str]) -> dict[str, Any]:
        by_loop = {k: v for k, v in asdict(facts).items() if k != "drawn"}
        out: dict[str, Any] = {k: {lp: v for lp, v in d.items() if lp in loops} for k, d in by_loop.items()}
        out["drawn"] = sorted((c, r) for c, r in facts.drawn if terminal.reserve_cards[c] in loops)
        out["arrivals"] = {
            lp: sorted(a, key=lambda x: (x["at"], x["quantity"])) for lp, a in out["arrivals"].items()
        }
        return out

    every = {lp.id for lp in terminal.config.loops}
    for loops in ({BOLT}, {WASH}, {BOLT, terminal.config.loops[3].id}, every):
        some = runway_rows.read_facts(terminal.db, since, terminal.reserve_cards, loops, log_from)
        assert of(some, loops) == of(full, loops)
        assert {lp for d in asdict(some).values() if isinstance(d, dict) for lp in d} <= loops
        assert all(terminal.reserve_cards[card] in loops for card, _ in some.drawn)


def test_the_narrowed_reads_go_through_the_loop_indexes(terminal: Terminal) -> None:
    """A pass over one loop must not walk the whole line's rows: each read's plan, as SQLite picks it."""
    since = "2026-01-01T00:00:00.000000Z"
    of, one = runway_rows._OF_LOOPS, (json.dumps([BOLT]),)
    reads = {
        runway_rows._IN_USE.format(of.format("")): (one, "ix_card_loop_id (loop_id=?)"),
        runway_rows._EMPTIES_OF.format(of.format("")): (
            (since, *one, 7),
            "ix_card_log_loop_id (loop_id=? AND id>?)",
        ),
        # Where the window starts in the log: its index entries, no row read.
        runway_rows._FIRST_ID: ((since,), "COVERING INDEX ix_card_log_occurred_at (occurred_at>?)"),
        runway_rows._PROMISES.format(of.format("r.")): (one, "ix_request_loop_raised (loop_id=?)"),
        runway_rows._WARNINGS.format(of.format("")): (one, "ux_runway_warning_open (loop_id=?)"),
        # The whole line's bin empties: the window by time, not every bin-empty row ever logged.
        runway_rows._EMPTIES: ((since,), "ix_card_log_occurred_at (occurred_at>?)"),
    }
    with terminal.db.snapshot() as sql:
        for text, (args, step) in reads.items():
            plan = " ".join(row[-1] for row in sql.execute(f"EXPLAIN QUERY PLAN {text}", args))
            assert f"USING {step}" in plan or f"USING INDEX {step}" in plan, (text, plan)


def test_a_clock_set_back_widens_what_a_pass_over_some_loops_reads(
    terminal: Terminal, clock: FakeClock
) -> None:
    """Two bolt bins emptied 10 min apart and refilled: 3,000/h measured, 20 min of runway. Nine hours
    later the empties have left the window (planned rate, 6 h: fine); the clock set back two hours
    brings them back into it, rows older than where the last full pass found the window to start."""
    run_short(terminal, clock)
    clock.advance(minutes=10)
    for card in terminal.config.loop(BOLT).card_id_list()[:2]:
        assert record_scan(terminal, card, source="keyboard", confirmed=True).accepted
    monitor = RunwayMonitor(terminal)
    assert monitor.tick() == [f"warning {BOLT}"]
    clock.advance(hours=9)
    assert monitor.tick() == [f"recovered {BOLT}"]
    clock.step_wall(hours=-2)
    assert monitor.tick_loops({BOLT}) == [f"warning {BOLT}"]


def test_the_job_runs_full_passes_on_the_timer_and_at_start_and_the_changed_loops_in_between(
    terminal: Terminal, clock: FakeClock
) -> None:
    job = RunwayJob(RunwayMonitor(terminal), terminal.card_loops, 30.0, monotonic=clock.monotonic)
    assert job.step() == [] and job.passes == {"full": 1, "loops": 0}  # start-up
    bolt = terminal.config.loop(BOLT).card_id_list()
    # One bolt bin emptied: 2 full bins and a refill due in 4 h, 7.2 h of runway: not at risk.
    assert record_scan(terminal, bolt[0], source="keyboard").accepted
    assert job.note(CardsChanged((bolt[0],)))
    assert job.step() == [] and job.passes == {"full": 1, "loops": 1}
    # Nobody touches the bolts for 4 h 10 min (the wall clock moves, the monotonic one not yet):
    # the refill is overdue, a broken promise no longer counts, the runway (2.4 h) is below the
    # 4 h margin with no card changed. A change elsewhere looks at its own loop only.
    clock.step_wall(hours=4, minutes=10)
    wash = terminal.config.loop(WASH).card_id_list()[0]
    record_scan(terminal, wash, source="keyboard")
    assert job.note(CardsChanged((wash,))) and not job.note(object())
    assert job.step() == [] and job.passes == {"full": 1, "loops": 2}
    assert job.step() == []  # woken with nothing noted and no full pass due: nothing read
    assert job.passes == {"full": 1, "loops": 2}
    # The timer's full pass finds the bolts at risk; so would a change under a steady stream of them.
    clock.mono += 30
    job.note(CardsChanged((wash,)))
    assert job.step() == [f"warning {BOLT}"] and job.passes == {"full": 2, "loops": 2}


def test_a_supplier_warning_or_an_unknown_card_runs_a_full_pass(terminal: Terminal, clock: FakeClock) -> None:
    job = RunwayJob(RunwayMonitor(terminal), terminal.card_loops, 30.0, monotonic=clock.monotonic)
    job.step()
    plant_warning(terminal, WASH, clock)
    warned = SupplierWarned("r1", BOLT, "C10001", "delayed", None, "late truck")
    assert job.note(warned) and job.step() == [f"recovered {WASH}"]
    plant_warning(terminal, WASH, clock)
    assert job.note(CardsChanged(("C10001", "NOT-IN-THE-CONFIG")))
    assert job.step() == [f"recovered {WASH}"] and job.passes == {"full": 3, "loops": 0}


def test_the_runtime_answers_a_card_change_with_a_pass_over_its_loop(
    tmp_path: Path, clock: FakeClock
) -> None:
    """`serve`'s wiring: a scan wakes the job at once, for the scanned card's loop only."""
    terminal = enrolled(open_terminal(tmp_path, clock, plant_config(check_seconds=3600)))
    runtime = Runtime(terminal, None, RuntimeOptions()).start()
    try:
        wait_for(lambda: runtime.runway_job.passes["full"] == 1, what="the start-up pass")
        plant_warning(terminal, WASH, clock)
        cards = terminal.config.loop(BOLT).card_id_list()
        assert runtime.scan(cards[0]).accepted
        clock.advance(minutes=10)
        assert runtime.scan(cards[1]).accepted
        wait_for(lambda: BOLT in open_episodes(terminal), what="the bolt loop's warning")
        assert WASH in open_episodes(terminal)  # left to the timed pass (an hour away here)
        assert runtime.runway_job.passes["full"] == 1 and runtime.runway_job.passes["loops"] >= 1
    finally:
        runtime.stop()
        terminal.close()
