"""The card log screen: every card and andon event, newest first, a page at a time, with filters,
a per-card timeline (each cycle with its lead time) and CSV export.

A year is about a million rows: the screen holds one page (100 rows) and asks `services.log_query`
for the next or previous page by keyset, in a worker thread, so paging costs the same on the first
page and the ten-thousandth. The scan field keeps the focus as on every screen (a scan still works
here); the filter line is an explicit field: Ctrl+F moves into it, Enter applies the filter and
gives the focus back to the scan field (a line that is no filter is explained in amber and keeps the
focus, to be corrected), Escape leaves it without applying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Label

from kanban_terminal.domain.metrics import fmt_duration
from kanban_terminal.domain.shifts import UTC_CALENDAR, ShiftCalendar
from kanban_terminal.services.log_query import (
    CardCycle,
    LogFilter,
    LogPage,
    QueryError,
    card_cycles,
    parse_query,
    read_page,
    write_csv,
)
from kanban_terminal.storage.db import Database
from kanban_terminal.tui.live import Throttle
from kanban_terminal.tui.palette import ATTENTION, clip
from kanban_terminal.tui.screens.base import TerminalScreen
from kanban_terminal.tui.views import ScreenChrome, TerminalView

PAGE = 100
# Column sets by screen width, with fixed widths: a cell is cut with an ellipsis (the full text is in
# the CSV export), never widened by its input. Below 120 columns the time loses its date (the info
# line above the table gives the span) and Loop and From -> to give way, so Source, Actor and Detail
# stay on an 80-column screen (issue 15: they were cut).
_WIDE = (
    ("Id", 6),
    ("When (UTC)", 19),
    ("Event", 16),
    ("Card", 8),
    ("Loop", 12),
    ("From -> to", 22),
    ("Source", 14),
    ("Actor", 8),
    ("Detail", 40),
)
_NARROW = (("Id", 5), ("UTC", 8), ("Event", 14), ("Card", 7), ("Source", 10), ("Actor", 6), ("Detail", 14))
_WIDE_FROM = 120
_ABNORMAL = (
    "rejected_upstream",
    "flagged_lost",
    "retired",
    "andon_raised",
    "andon_escalated",
    "terminal_quit_refused",
)


class CardLogReader:
    """The log screen's only way to the terminal: reads the card log (pages, a card's cycles, a CSV
    export to a file) and the clock; it writes nothing to the database. Given by the App."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime], calendar: ShiftCalendar = UTC_CALENDAR
    ) -> None:
        self._db = db
        self.clock = clock
        self.calendar = calendar
        """The plant's zone and shifts: filter times without a zone and the export's local columns."""
        self.exports = db.path.parent / "exports"
        """Where exports go: beside the database, on the terminal's own disk."""

    def page(self, flt: LogFilter, *, before: int | None, after: int | None, limit: int) -> LogPage:
        return read_page(self._db, flt, before=before, after=after, limit=limit)

    def cycles(self, card: str) -> list[CardCycle]:
        return card_cycles(self._db, card)

    def export(self, flt: LogFilter, out: IO[str], progress: Callable[[int, int], None]) -> int:
        return write_csv(self._db, flt, out, progress=progress, calendar=self.calendar)


@dataclass(frozen=True)
class _Request:
    flt: LogFilter
    before: int | None = None
    after: int | None = None


class LogScreen(TerminalScreen):
    """Card log, newest first."""

    BINDINGS = [
        Binding("ctrl+f", "edit_filter", "Filter", id="log.filter", priority=True),
        Binding("ctrl+t", "timeline", "Card timeline", id="log.timeline", priority=True),
        Binding("ctrl+s", "export", "Export CSV", id="log.export", priority=True),
        Binding("pagedown", "older", "Older", id="log.older"),
        Binding("pageup", "newer", "Newer", id="log.newer"),
        Binding("down", "cursor(1)", "Down", id="log.down", show=False),
        Binding("up", "cursor(-1)", "Up", id="log.up", show=False),
    ]

    def __init__(self, chrome: ScreenChrome, log: CardLogReader) -> None:
        super().__init__(chrome)
        self.card_log = log
        self.filter = LogFilter()
        self.filter_text = ""
        """The filter line's text of the filter in force (`filter`)."""
        self.page: LogPage | None = None
        self.timeline_card: str | None = None
        self.last_export: tuple[Path, int] | None = None
        self._live = Throttle(self, chrome.live_refresh_seconds, self._read_newest)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="log"):
            with Horizontal(id="log-filter-row"):
                yield Label("Filter (Ctrl+F):", id="log-filter-label")
                yield Input(
                    placeholder="e.g. loop:ST20-PLATE event:delivered since:7d  (card part station source "
                    "actor until; other words: free text)",
                    id="log-filter",
                )
            yield Label("", id="log-info")
            table: DataTable[Text | str] = DataTable(id="log-table", cursor_type="row", zebra_stripes=True)
            table.can_focus = False
            yield table
            yield Label("", id="timeline-title", classes="section-title")
            cycles: DataTable[Text | str] = DataTable(id="timeline", cursor_type="none", zebra_stripes=True)
            cycles.can_focus = False
            yield cycles

    def on_mount(self) -> None:
        self.query_one("#timeline", DataTable).add_columns(
            "Raised (UTC)", "Back (UTC)", "Lead time", "Due", "On time", "Status"
        )
        self.query_one("#timeline").display = False
        self.query_one("#timeline-title").display = False
        self.load(_Request(self.filter))

    # -- following the bus (issue 15: the log was a snapshot) --------------------------------------

    def show_body(self, old: TerminalView | None, view: TerminalView) -> None:
        if old is not None and view.events_seen != old.events_seen:
            self._live.poke()

    def _read_newest(self) -> None:
        """New events: read the newest page again, unless the person has paged back into history
        (then the "PgUp newer" hint says there is more)."""
        if self.page is None or not self.page.has_newer:
            self.load(_Request(self.filter))
        if self.timeline_card is not None:
            self.load_cycles(self.timeline_card)

    # -- loading -----------------------------------------------------------------------------------

    @work(thread=True, group="log", exclusive=True, description="read a page of the card log")
    def load(self, request: _Request) -> None:
        page = self.card_log.page(request.flt, before=request.before, after=request.after, limit=PAGE)
        self.app.call_from_thread(self.show_page, request.flt, page)

    def show_page(self, flt: LogFilter, page: LogPage) -> None:
        if flt != self.filter:
            return  # an answer to a filter the person has already replaced
        self.page = page
        table = self.query_one("#log-table", DataTable)
        keep = self.page_row_key(table)
        columns = _WIDE if self.app.size.width >= _WIDE_FROM else _NARROW
        if len(table.columns) != len(columns):
            table.clear(columns=True)
            for label, width in columns:
                table.add_column(label, width=width)
        table.clear()
        for e in page.entries:
            style = ATTENTION if e.event in _ABNORMAL else ""
            moves = f"{e.from_state or ''} -> {e.to_state}" if e.to_state else ""
            cells = {
                "Id": str(e.id),
                "When (UTC)": f"{e.occurred_at:%Y-%m-%d %H:%M:%S}",
                "UTC": f"{e.occurred_at:%H:%M:%S}",
                "Event": e.event,
                "Card": e.card_id or "",
                "Loop": e.loop_id or "",
                "From -> to": moves,
                "Source": e.source,
                "Actor": e.actor or "",
                "Detail": e.detail,
            }
            # Text, not str: DataTable reads a str as markup, and source / detail carry outside text.
            table.add_row(
                *(
                    Text(clip(cells[label], width), style=style if label == "Event" else "")
                    for label, width in columns
                ),
                key=str(e.id),
            )
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep), scroll=False)  # a live re-read keeps the row
        more = []
        if page.has_newer:
            more.append("PgUp newer")
        if page.has_older:
            more.append("PgDn older")
        shown = f"{len(page.entries)} rows" if page.entries else "no rows match"
        span = ""
        if page.entries:
            old, new = page.entries[-1].occurred_at, page.entries[0].occurred_at
            span = f" from {old:%Y-%m-%d %H:%M} to {new:%Y-%m-%d %H:%M}"
        self.query_one("#log-info", Label).update(Text(f"{shown}{span}   {'  '.join(more)}"))

    @staticmethod
    def page_row_key(table: DataTable[Text | str]) -> str | None:
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    # -- filter ------------------------------------------------------------------------------------

    def action_edit_filter(self) -> None:
        self.query_one("#log-filter", Input).focus()

    @on(Input.Submitted, "#log-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.apply_filter(event.value):
            self.query_one("#scan-field").focus()
        # A refused filter keeps the focus in its field, to be corrected (a scanner read still
        # goes to the scan path from there: scanner_wins.py).

    def apply_filter(self, query: str) -> bool:
        """Read the filter line and show the newest page that matches it; False (and why, in
        amber: red is only for a line stop) when the line is not a filter."""
        try:
            flt = parse_query(query, self.card_log.clock(), self.card_log.calendar.zone)
        except QueryError as exc:
            self.query_one("#log-info", Label).update(Text(str(exc), style=ATTENTION))
            return False
        self.filter = flt
        self.filter_text = query
        self.timeline_card = None
        self._hide_timeline()
        self.load(_Request(flt))
        return True

    def key_escape(self) -> None:
        if self.focused is not None and self.focused.id == "log-filter":
            # Back to the filter in force: the line showed an unapplied (or refused) text while the
            # rows and Ctrl+S's export used the old filter (found in tmux).
            self.query_one("#log-filter", Input).value = self.filter_text
            self.query_one("#scan-field").focus()

    # -- paging ------------------------------------------------------------------------------------

    def action_older(self) -> None:
        if self.page is not None and self.page.has_older:
            self.load(_Request(self.filter, before=self.page.oldest_id))

    def action_newer(self) -> None:
        if self.page is not None and self.page.has_newer:
            self.load(_Request(self.filter, after=self.page.newest_id))

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#log-table", DataTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    # -- timeline ----------------------------------------------------------------------------------

    def _selected_card(self) -> str | None:
        if self.filter.card:
            return self.filter.card.upper()
        table = self.query_one("#log-table", DataTable)
        if self.page is None or not self.page.entries or not table.row_count:
            return None
        return self.page.entries[min(table.cursor_row, len(self.page.entries) - 1)].card_id

    def action_timeline(self) -> None:
        """Show the selected card's cycles with their lead times, and only its rows in the log."""
        card = self._selected_card()
        if card is None:
            self.query_one("#log-info", Label).update("Select a row with a card first (up / down).")
            return
        self.timeline_card = card
        self.filter = LogFilter(card=card)
        self.filter_text = f"card:{card}"
        self.query_one("#log-filter", Input).value = self.filter_text
        self.load(_Request(self.filter))
        self.load_cycles(card)

    @work(thread=True, group="timeline", exclusive=True, description="read a card's cycles")
    def load_cycles(self, card: str) -> None:
        cycles = self.card_log.cycles(card)
        self.app.call_from_thread(self.show_cycles, card, cycles)

    def show_cycles(self, card: str, cycles: list[CardCycle]) -> None:
        if card != self.timeline_card:
            return
        table = self.query_one("#timeline", DataTable)
        table.clear()
        for c in cycles:
            late = c.on_time is False
            table.add_row(
                f"{c.raised_at:%Y-%m-%d %H:%M}",
                f"{c.closed_at:%Y-%m-%d %H:%M}" if c.closed_at else "open",
                Text(fmt_duration(c.lead_time_s), style=ATTENTION if late else ""),
                f"{c.due_at:%H:%M}",
                {True: "yes", False: "LATE", None: "-"}[c.on_time],
                c.status,
            )
        leads = [c.lead_time_s for c in cycles if c.lead_time_s is not None]
        mean = fmt_duration(sum(leads) / len(leads)) if leads else "-"
        self.query_one("#timeline-title", Label).update(
            Text(f"Card {card}: {len(cycles)} cycles (newest first), mean lead time {mean}")
        )
        table.display = True
        self.query_one("#timeline-title").display = True

    def _hide_timeline(self) -> None:
        self.query_one("#timeline").display = False
        self.query_one("#timeline-title").display = False

    # -- export ------------------------------------------------------------------------------------

    def action_export(self) -> None:
        path = self.card_log.exports / f"card-log-{self.card_log.clock().astimezone(UTC):%Y%m%d-%H%M%S}.csv"
        self.query_one("#log-info", Label).update(Text(f"Exporting to {path} ..."))
        self.export(self.filter, path)

    @work(thread=True, group="export", exclusive=False, description="export the card log to CSV")
    def export(self, flt: LogFilter, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        info = self.query_one("#log-info", Label)

        def progress(done: int, _total: int) -> None:
            # A year of log is a million rows: show the count growing, not a frozen line.
            self.app.call_from_thread(info.update, Text(f"Exporting to {path} ... {done:,} rows"))

        with path.open("w", encoding="utf-8", newline="") as out:
            rows = self.card_log.export(flt, out, progress)
        self.app.call_from_thread(self._exported, path, rows)
        return rows

    def _exported(self, path: Path, rows: int) -> None:
        self.last_export = (path, rows)
        self.query_one("#log-info", Label).update(Text(f"Exported {rows} rows to {path}"))
