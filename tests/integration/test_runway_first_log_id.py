"""The window's first card-log id found from the bound before (storage/runway_rows.first_log_id with
`after`, issue 19): a full pass walks only what left the window since the last one, and must find the
same id as a search of the whole window, late rows (a buffered signal's own, older time, logged
after newer ones) and a window past the last row included. Real SQLite file, the demo line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from kanban_terminal.config import demo_config_path, parse_config
from kanban_terminal.services.runway import RunwayMonitor
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.storage import runway_rows
from tests.support.andon import FakeClock, open_terminal


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


def test_the_monitor_searches_the_whole_window_again_after_a_clock_step_back(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = parse_config(demo_config_path().read_text(), "plant.toml")
    terminal = open_terminal(tmp_path, clock, cfg)
    try:
        card = cfg.loops[0].card_id_list()[0]
        assert record_scan(terminal, card, source="keyboard").accepted
        monitor = RunwayMonitor(terminal)
        clock.now += timedelta(hours=20)  # the scan left the 8-hour window
        monitor.tick()
        assert monitor._log_from is not None
        moved_on = monitor._log_from[1]
        clock.now -= timedelta(hours=19)  # set back: the scan is in the window again
        monitor.tick()
        assert monitor._log_from[1] < moved_on
        assert monitor._log_from[1] == runway_rows.first_log_id(terminal.db, monitor._log_from[0])
    finally:
        terminal.close()
