"""Issue 15 on the screen: colour means trouble (ISA-101), an open call shows everywhere, 80x24 keeps
the keys, clock and line state, and a misread neither stays for ever nor widens a column.

Each test drives the real App through Pilot on a real SQLite file; none measures time. Colours are
checked as facts of the palette: grey means r == g == b; amber and red are the palette's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.color import Color
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.recent_scans import RecentScans
from kanban_terminal.tui.widgets.status_bar import LinkView, StatusBar
from kanban_terminal.tui.widgets.stop_banner import StopBanner
from tests.support.andon import FakeClock
from tests.support.floor import GARBAGE, SCREENS, enter_state, floor_terminal, settle

AMBER = Color.parse("#ffbf00")
RED = Color.parse("#d00000")


def grey(color: Color) -> bool:
    return color.r == color.g == color.b


def visible_text(widget: StatusBar) -> str:
    """What the widget shows on screen, cut to its width (not the whole text it renders)."""
    return "".join(widget.render_line(y).text for y in range(widget.size.height))


# -- finding 2: a misread is amber, shows its time, clears; a garbage read widens nothing ----------


async def test_a_misread_is_amber_with_its_time_and_clears_after_the_configured_time(tmp_path: Path) -> None:
    clock = FakeClock()
    terminal = floor_terminal(tmp_path, "normal", clock)
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await enter_state(app, pilot, "misread", "scan")
        banner = app.screen.query_one(Banner)
        assert "SCAN NOT READ" in str(banner.render())
        assert f"at {clock.now.astimezone():%H:%M:%S}" in str(banner.render())
        assert banner.styles.background == AMBER  # attention, not the line-stop red
        clock.advance(seconds=terminal.config.display.misread_banner_seconds - 1)
        app._tick()
        await pilot.pause()
        assert "SCAN NOT READ" in str(banner.render())  # not yet
        clock.advance(seconds=1)
        app._tick()
        await pilot.pause()
        assert "SCAN NOT READ" not in str(banner.render())
        assert str(banner.render()).startswith("Scan a kanban card")
    terminal.close()


async def test_the_next_good_scan_clears_a_misread(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await enter_state(app, pilot, "misread", "scan")
        app.screen.query_one("#scan-field").value = "B1002X"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(app, pilot)
        banner = app.screen.query_one(Banner)
        assert "REFILL REQUESTED" in str(banner.render()) and "NOT READ" not in str(banner.render())
    terminal.close()


async def test_a_560_character_read_does_not_widen_the_recent_scans_columns(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await enter_state(app, pilot, "misread", "scan")
        table = app.screen.query_one(RecentScans)
        widths = [w + 2 for w in table.widths]  # each cell has a space either side
        assert sum(widths) <= 78, widths  # Time, Card, Part and "What happened" all on screen
        card = table.get_row_at(0)[1]
        assert str(card).endswith("…") and len(str(card)) < 20
        assert GARBAGE[:8] in table.render_line(1).text  # and that is what is drawn
        assert GARBAGE[:8] in str(card)
    terminal.close()


# -- finding 3: an open call shows an amber band on every screen -----------------------------------


async def test_an_open_help_call_shows_an_amber_band_on_every_screen(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "call")
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for mode in SCREENS:
            await app.switch_mode(mode)
            await settle(app, pilot)
            band = app.screen.query_one("#call-banner")
            assert band.display and band.region.height >= 1, mode
            assert "HELP CALLED" in str(band.render()) and "ST20" in str(band.render())
            assert band.styles.background == AMBER
            assert not app.screen.query_one(StopBanner).display
        assert len(read_board(terminal).line.active) == 1
    terminal.close()


# -- finding 7: colour only for the abnormal ----------------------------------------------------------


async def test_normal_running_is_grey_an_accepted_scan_included(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "normal")
    connected = LinkView("connected", terminal.clock(), 0, None)
    app = KanbanApp(terminal, link_view=lambda _status: connected)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#scan-field").value = "B1002X"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(app, pilot)
        banner = app.screen.query_one(Banner)
        assert banner.has_class("-accepted")
        assert grey(banner.styles.background) and grey(banner.styles.border.top[1])
        bar = app.screen.query_one(StatusBar)
        rendered = bar.render()
        assert "Upstream: connected" in rendered.plain
        assert all(
            not span.style for span in rendered.spans if "Upstream" in rendered.plain[span.start : span.end]
        )
        assert grey(bar.styles.background)
        for key in app.screen.query(FooterKey):  # the footer is not navy
            assert grey(key.styles.background) or key.styles.background.a == 0
        assert grey(app.screen.query_one("#app-keys").styles.background)
        await app.switch_mode("board")
        await settle(app, pilot)
        loops = app.screen.query_one("#loops", DataTable)
        urgency = [loops.get_row_at(i)[3] for i in range(loops.row_count)]  # Loop, Runway, Waiting, Urgency
        assert urgency and all(isinstance(u, Text) and not u.style for u in urgency)  # waiting is normal
    terminal.close()


async def test_andon_reasons_are_plain_and_only_a_stop_is_red(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "stop")
    assert svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="cli").ok
    app = KanbanApp(terminal)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.switch_mode("andon")
        await settle(app, pilot)
        table = app.screen.query_one("#andon-active", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        kinds = {str(r[0]): r[0].style for r in rows}
        assert "red" in str(kinds["STOP"]).lower() or "#d00000" in str(kinds["STOP"])
        assert "#d00000" not in str(kinds["CALL"])
        assert all(not r[2].style for r in rows)  # reason labels: no rainbow
        assert app.screen.query_one(StopBanner).styles.background == RED
    terminal.close()


# -- finding 4: 80x24 keeps the keys, the clock and the line state ------------------------------------


@pytest.mark.parametrize("state", ["normal", "stop"])
async def test_at_80x24_every_screen_shows_the_app_keys_the_clock_and_the_line_state(
    tmp_path: Path, state: str
) -> None:
    terminal = floor_terminal(tmp_path, state)
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for mode in SCREENS:
            await app.switch_mode(mode)
            await settle(app, pilot)
            shown = {
                k.key: k
                for k in app.screen.query(FooterKey)
                if k.display and k.region.right <= 80 and k.region.width
            }
            # The App's keys as they are bound now (a [keys] keymap may have moved them).
            app_keys = [
                b for node, b, _on, _tip in app.screen.active_bindings.values() if node is app and b.show
            ]
            assert len(app_keys) >= 6, app_keys
            for binding in app_keys:
                assert binding.key in shown, f"{mode}: {binding.key} {binding.description} not in the footer"
                assert binding.description in shown[binding.key].render().plain
            bar = visible_text(app.screen.query_one(StatusBar))
            assert f"{terminal.clock().astimezone():%H:%M:%S}" in bar, (mode, bar)
            assert ("LINE STOPPED" if state == "stop" else "Line running") in bar, (mode, bar)
    terminal.close()


async def test_during_a_stop_at_80x24_the_board_and_log_keep_useful_rows(tmp_path: Path) -> None:
    terminal = floor_terminal(tmp_path, "stop")
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await app.switch_mode("board")
        await settle(app, pilot)
        assert app.screen.query_one("#loops").region.height >= 5  # header + 4 loops
        assert app.screen.query_one("#requests").region.height >= 4  # header + 3 requests
        await app.switch_mode("log")
        await settle(app, pilot)
        log = app.screen.query_one("#log-table", DataTable)
        assert log.region.height >= 8
        labels = [str(c.label) for c in log.columns.values()]
        assert {"Source", "Actor", "Detail"} <= set(labels)
        right = sum(c.get_render_width(log) for c in log.columns.values())
        assert right <= 78, labels  # Source, Actor and Detail are on screen, not scrolled off
    terminal.close()
