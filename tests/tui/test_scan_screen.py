"""The real Textual app driven by Pilot: scan, see the banner, find the rows in the database."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kanban_terminal.config import SerialScannerSettings
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.runtime import Runtime
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.screens.board import BoardScreen
from kanban_terminal.tui.screens.confirm import ConfirmDeliveryScreen
from kanban_terminal.tui.screens.scan import ScanScreen
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.recent_scans import RecentScans
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import StatusBar
from tests.support.terminals import Clock, demo_config, open_terminal

CARD = "B1001Z"


async def scan(app: KanbanApp, pilot: Pilot[None], code: str) -> None:
    """Type a code as a wedge scanner would (the whole read, then Enter) and wait for the outcome."""
    field = app.screen.query_one(ScanField)
    assert field.has_focus, "the scan field must have focus on every screen"
    field.value = code
    await pilot.press("enter")
    await app.workers.wait_for_complete()
    await pilot.pause()


def banner_text(app: KanbanApp) -> str:
    return str(app.screen.query_one(Banner).render())


async def test_scan_shows_green_banner_and_writes_the_database(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(app, pilot, CARD)
        banner = app.screen.query_one(Banner)
        assert banner.has_class("-accepted")
        assert "REFILL REQUESTED" in banner_text(app) and "Hex bolt M8x30" in banner_text(app)
        assert app.screen.query_one(ScanField).value == ""
        assert app.screen.query_one(RecentScans).row_count == 1
    db = sqlite3.connect(tmp_path / "terminal.db")
    assert db.execute("SELECT state FROM card WHERE id = ?", (CARD,)).fetchone() == ("queued",)
    assert db.execute("SELECT count(*) FROM replenishment_request WHERE card_id = ?", (CARD,)).fetchone() == (
        1,
    )


async def test_rejected_scan_is_red_rings_the_bell_and_is_shown_escaped(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    app = KanbanApp(terminal)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(app, pilot, "B10\x1b[2J01Z")
        assert app.screen.query_one(Banner).has_class("-rejected")
        assert "control characters" in banner_text(app)
        await scan(app, pilot, "NOPE42")
        assert "not a valid card code" in banner_text(app)
        assert len(bells) == 2
    db = sqlite3.connect(tmp_path / "terminal.db")
    kept = db.execute("SELECT input FROM rejected_input ORDER BY id").fetchall()
    assert kept == [("B10\\x1b[2J01Z",), ("NOPE42",)]


async def test_scan_works_from_the_board_screen(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    app = KanbanApp(terminal)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        await scan(app, pilot, CARD)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one(Banner).has_class("-accepted")
        requests = app.screen.query_one("#requests")
        assert requests.row_count == 1  # type: ignore[attr-defined]
        assert "Open requests: 1" in str(app.screen.query_one("#requests-title").render())


async def test_early_delivery_asks_for_confirmation_and_a_rescan_confirms(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(app, pilot, CARD)
        clock.advance(minutes=2)
        await scan(app, pilot, CARD)
        assert isinstance(app.screen, ConfirmDeliveryScreen)
        assert app.last_outcome is not None and app.last_outcome.kind is OutcomeKind.NEEDS_CONFIRMATION
        await scan(app, pilot, CARD)  # scanning the same card again is the glove-friendly "yes"
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDeliveryScreen)
        assert app.last_outcome is not None and app.last_outcome.kind is OutcomeKind.DELIVERED


async def test_another_card_scanned_during_confirmation_cancels_it_and_counts_as_its_own_scan(
    tmp_path: Path,
) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(app, pilot, CARD)
        clock.advance(minutes=2)
        await scan(app, pilot, CARD)
        await scan(app, pilot, "B1002X")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_outcome is not None
        assert (app.last_outcome.card_id, app.last_outcome.kind) == ("B1002X", OutcomeKind.REQUEST_RAISED)
    db = sqlite3.connect(tmp_path / "terminal.db")
    assert db.execute("SELECT state FROM card WHERE id = ?", (CARD,)).fetchone() == ("queued",)


async def test_restart_lists_what_the_log_holds(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    from kanban_terminal.services.scanning import record_scan

    record_scan(terminal, CARD, source="cli")  # committed by another process, never shown here
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)):
        rows = app.recent_rows()
        assert [r[1] for r in rows] == [CARD, CARD] and rows[0][4] == "Refill requested"


@asynccontextmanager
async def serial_scanner_app(
    tmp_path: Path, size: tuple[int, int]
) -> AsyncIterator[tuple[KanbanApp, Pilot[None], int]]:
    """The App over a runtime that reads serial scanner ST10 on a pty, once the port is open; and
    the pty's master end, which plays the scanner."""
    master, slave = os.openpty()
    cfg = demo_config()
    cfg = cfg.model_copy(update={"scanners": (SerialScannerSettings(name="ST10", port=os.ttyname(slave)),)})
    terminal = open_terminal(tmp_path, Clock(), cfg)
    runtime = Runtime(terminal, None)  # the runtime reads the port; the App only hears of it
    app = KanbanApp(terminal, runtime=runtime)
    try:
        async with app.run_test(size=size) as pilot:
            with runtime:
                while not app.scanner_states["ST10"]:
                    await pilot.pause(0.05)
                yield app, pilot, master
    finally:
        os.close(master)
        os.close(slave)


async def serial_read(app: KanbanApp, pilot: Pilot[None], master: int) -> None:
    """The scanner reads CARD; back once its outcome is shown."""
    os.write(master, f"]C1{CARD}\r".encode())
    while app.last_outcome is None:
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert app.last_outcome.source == "serial:ST10"
    assert app.last_outcome.kind is OutcomeKind.REQUEST_RAISED


async def test_serial_scanner_on_a_pty_goes_through_the_same_scan_path(tmp_path: Path) -> None:
    async with serial_scanner_app(tmp_path, (100, 24)) as (app, pilot, master):
        assert "ST10 ok" in str(app.screen.query_one(StatusBar).render())
        await serial_read(app, pilot, master)
        assert app.screen.query_one(Banner).has_class("-accepted")


@pytest.mark.parametrize("dialog_key", ["f4", "f6"])
async def test_a_serial_scanner_read_while_a_dialog_is_open_is_recorded_and_leaves_it(
    tmp_path: Path, dialog_key: str
) -> None:
    """The plant's other scanner door: a serial scanner's read while the call picker (F4) or the
    stop's badge prompt (F6) is open is recorded once, raises no andon, and the dialog stays as it was."""
    async with serial_scanner_app(tmp_path, (80, 24)) as (app, pilot, master):
        await pilot.press(dialog_key)
        await pilot.pause()
        dialog, focused = app.screen, app.focused
        assert not isinstance(dialog, ScanScreen)
        await serial_read(app, pilot, master)
        assert app.screen is dialog and app.focused is focused
    db = sqlite3.connect(tmp_path / "terminal.db")
    assert db.execute("SELECT count(*) FROM andon").fetchone() == (0,)
    events = db.execute("SELECT event FROM card_log WHERE card_id = ? ORDER BY id", (CARD,)).fetchall()
    assert [e for (e,) in events].count("request_raised") == 1


async def test_a_scanner_ending_its_read_with_tab_submits_too(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        field = app.screen.query_one(ScanField)
        field.value = CARD
        await pilot.press("tab")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.last_outcome is not None and app.last_outcome.kind is OutcomeKind.REQUEST_RAISED
        assert field.has_focus and field.value == ""


async def test_refused_bin_signals_warn_without_flooding_the_screen(tmp_path: Path) -> None:
    from kanban_terminal.services.signals import SignalRejected

    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    app = KanbanApp(terminal)
    shown: list[str] = []
    app.notify = lambda message, **_kw: shown.append(message)  # type: ignore[method-assign, assignment, return-value]
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(20):
            terminal.bus.publish(SignalRejected("BS-9", "unknown device: add it under [[bins]]"))
        await pilot.pause()
        assert shown == ["Bin sensor BS-9: unknown device: add it under [[bins]]"]
        clock.advance(seconds=31)
        terminal.bus.publish(SignalRejected("BS-9", "payload is not JSON"))
        await pilot.pause()
        assert shown[-1] == "Bin sensor BS-9: payload is not JSON" and len(shown) == 2


async def test_recent_scans_draw_newest_first_and_follow_the_screen_width(tmp_path: Path) -> None:
    """The table keeps each row's text once made (issue 15, scan-to-banner): a new scan must still
    come out on top, the older ones move down with their words, and a wider screen redraws every
    row at its wider columns."""
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    first, second = list(terminal.card_loops)[:2]
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(app, pilot, first)
        clock.advance(seconds=4)
        await scan(app, pilot, second)
        table = app.screen.query_one(RecentScans)
        lines = [table.render_line(y).text for y in range(4)]
        assert lines[0].split() == ["Time", "Card", "Part", "What", "happened"]
        assert second in lines[1] and first not in lines[1]
        assert [table.get_row_at(i)[1] for i in range(table.row_count)][-1] == first
        narrow = lines[1].index(table.get_row_at(0)[2])  # where Part starts at 80 columns
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        wide = table.render_line(1).text
        assert second in wide and wide.index(table.get_row_at(0)[2]) > narrow
        assert len(wide) == table.size.width
    terminal.close()


async def test_a_scan_reads_the_board_once_after_its_banner(tmp_path: Path) -> None:
    """A scan that raises a request announces CardsChanged and RequestRaised: one board read after
    the banner's paint, not one each (issue 15: the second read competed with the next scan)."""
    terminal = open_terminal(tmp_path, Clock())
    app = KanbanApp(terminal)
    reads: list[int] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        real = app.refresh_status
        app.refresh_status = lambda: (reads.append(1), real())[1]  # type: ignore[method-assign]
        await scan(app, pilot, CARD)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(reads) == 1
        banner = app.screen.query_one(Banner)
        assert banner.has_class("-accepted")
        await scan(app, pilot, "NOT-A-CARD")  # refused: the verdict's class replaces the other
        assert banner.has_class("-rejected") and not banner.has_class("-accepted")
        await scan(app, pilot, "B1101T")
        assert banner.has_class("-accepted") and not banner.has_class("-rejected")
        assert len(reads) == 2  # the refused read changed nothing on the board
    terminal.close()


async def test_the_banner_grows_for_a_longer_outcome_and_shrinks_back(tmp_path: Path) -> None:
    """The banner skips the screen's layout while its height stays the same (issue 15, scan to
    banner); a refusal whose message wraps must still grow it, and a good scan shrink it again."""
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.screen.query_one(Banner)
        await scan(app, pilot, CARD)
        good = banner.size.height
        clock.advance(seconds=4)
        await scan(app, pilot, "X" * 300)  # "Too long to be a card (...)" wraps at 80 columns
        assert "Read: XXX" in banner_text(app)
        assert banner.size.height == good + 1
        assert banner.content_size.height >= len(banner_text(app).splitlines())
        clock.advance(seconds=4)
        await scan(app, pilot, "NOT-A-CARD")  # refused too (same colour), on fewer lines
        assert "Read: NOT-A-CARD" in banner_text(app) and banner.size.height == good
        clock.advance(seconds=4)
        await scan(app, pilot, "X" * 300)
        assert banner.size.height == good + 1
        clock.advance(seconds=4)
        await scan(app, pilot, "B1101T")
        assert "B1101T" in banner_text(app) and banner.size.height == good
    terminal.close()
