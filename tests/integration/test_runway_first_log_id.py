"""The window's first card-log id found from the bound before (storage/runway_rows.first_log_id with
`after`, issue 19): a full pass walks only what left the window since the last one, and must find the
same id as a search of the whole window, late rows (a buffered signal's own, older time, logged
after newer ones) and a window past the last row included. Real SQLite file, the demo line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kanban_terminal.config import demo_config_path, parse_config
from kanban_terminal.services.runway import RunwayMonitor, kept_window, read_runways, runways_from
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.storage import runway_rows
from tests.support.andon import FakeClock, open_terminal
from tests.support.mqtt_lines import line_config


def test_the_bound_from_before_finds_the_same_first_id(tmp_path: Path) -> None:
    clock = FakeClock()
    start = clock.now
    cfg = parse_config(demo_config_path().read_text(), "plant.toml")
    terminal = open_terminal(tmp_path, clock, cfg)
    try:
        cards = [c for lp in cfg.loops for c in lp.card_id_list()][:12]
        for i, card in enumerate(cards):
            clock.now = start + timedelta(minutes=10 * i)
            assert record_scan(terminal, card, source="keyboard").accepted
        # Logged last, happened early: between the first two scans.
        clock.now = start + timedelta(minutes=5)
        assert record_scan(terminal, cards[0], source="keyboard", confirmed=True).accepted
        with terminal.db.snapshot() as sql:
            rows = sql.execute("SELECT count(*), max(id) FROM card_log").fetchone()
        assert rows[0] > 12
        after = 0
        sinces = [start - timedelta(days=1)] + [start + timedelta(minutes=m) for m in range(0, 130, 3)]
        for since in sinces:
            whole = runway_rows.first_log_id(terminal.db, since)
            found = runway_rows.first_log_id(terminal.db, since, after) if after else whole
            assert found == whole, since
            after = found
        assert after == rows[1] + 1  # the window is past every row: the next id
        # The late row keeps the bound below it while its time is in the window.
        late = runway_rows.first_log_id(terminal.db, start + timedelta(minutes=4), 1)
        assert late <= runway_rows.first_log_id(terminal.db, start + timedelta(minutes=6), 1)
    finally:
        terminal.close()


def test_the_monitor_keeps_the_screens_runways_as_the_window_moves_and_steps_back(tmp_path: Path) -> None:
    """The monitor keeps each loop's bin-empty times between passes (domain/runway_window.py) and
    reads only the rows logged since; after every pass, full or over some loops, its runways are
    the ones computed from every time in the window (storage's whole read, as before the window was
    kept), and so are the screen's (`read_runways`, which shares the window): with more empties in
    the window than the rates look at one by one (some handed over as a count), a late row (a
    buffered signal's older time), a red card's empty, as the window moves on, after the clock is
    set back (the scans are in the window again), forward again and a little back (within `SLACK`).
    A line of 2 loops x 8 cards and a red card."""
    clock = FakeClock()
    start = clock.now
    text = line_config(loops=2, cards=8, sensors=0) + '\n[[reserves]]\nloop = "LP0"\ncard_ids = ["R1"]\n'
    terminal = open_terminal(tmp_path, clock, parse_config(text, "line.toml"))
    monitor = RunwayMonitor(terminal)
    loops = [lp.id for lp in terminal.config.loops]

    def same(*only: str) -> None:
        done = monitor.tick_loops(only) if only else monitor.tick()
        since = clock.now - terminal.config.runway.settings().window
        every = runways_from(
            terminal, runway_rows.read_facts(terminal.db, since, terminal.reserve_cards), clock.now
        )
        # The runways, not `warning_open`: the pass read it before it raised or cleared.
        for kept in (monitor.runways, read_runways(terminal)):  # the job's, the screen's (one window)
            kept = [lr for lr in kept if not only or lr.loop.id in only]
            want = [lr for lr in every if not only or lr.loop.id in only]
            assert [lr.runway for lr in kept] == [lr.runway for lr in want], (clock.now, done)
            assert [lr.reserve_full for lr in kept] == [lr.reserve_full for lr in want]

    try:
        same()
        for i in range(6):  # LP0's cards 1-6 an hour apart, LP1's too, 7 minutes later
            for n in range(len(loops)):
                clock.now = start + timedelta(hours=i, minutes=7 * n)
                assert record_scan(terminal, f"C{n * 8 + i + 1:05d}", source="keyboard").accepted
            same(loops[0]) if i % 2 else same()
        assert record_scan(terminal, "R1", source="keyboard").accepted  # the reserve drawn
        # Logged last, happened early: a buffered signal's own time, between the first two scans.
        late = start + timedelta(minutes=30)
        assert record_scan(terminal, "C00007", source="keyboard", at=late).accepted
        same(loops[0])
        window = kept_window(terminal)
        since = clock.now - terminal.config.runway.settings().window
        assert window is not None and window.count(loops[0]) == 7  # the red card's empty left out
        assert window.empties_of(loops[0], since, clock.now, 2)[1] == 4  # the rates see 3 of 7, and a count
        for hours in (8.2, 9.5, 11, 13.6, 20):  # the window moves on: the oldest scans leave it
            clock.now = start + timedelta(hours=hours)
            same()
            same(*loops)
        clock.now = start + timedelta(hours=8.5)  # set back: the early scans are in the window again
        same(loops[1])
        same()
        window = kept_window(terminal)
        assert window is not None and window.count(loops[0]) == 6
        clock.now = start + timedelta(hours=12)
        same()
        window = kept_window(terminal)
        clock.now -= timedelta(seconds=30)  # a reader's clock a little behind: the same window serves it
        same()
        assert kept_window(terminal) is window
    finally:
        terminal.close()
