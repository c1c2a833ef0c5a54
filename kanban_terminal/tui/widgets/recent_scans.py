"""The last scans under the banner: what happened, newest first.

Columns have fixed widths that follow the screen's width, never the input's, and long cells are cut
with an ellipsis (tui/palette.clip): one 560-char garbage read widened the Card column until Part
and "What happened" left an 80-column screen (issue 15). The whole read is in the log and in
`rejected`. At 80 columns the widths are those below; a wider screen gives its extra columns to
Card and "What happened" (escaped outside text stays readable there).

Drawn line by line (Textual's line API), each row's text made once and kept: the rows never change,
only move down one line per scan. It was a `DataTable`, which drops every cached line on any change
and so drew all its rows again in the very frame that shows a scan's banner: in tmux, the banner's
frame went from 52-58 ms to 17-18 ms (p50 from the frame's view to its write, 40 scans, busy box)
without the table in it (bench/scan_stages.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.strip import Strip
from textual.widget import Widget

from kanban_terminal.domain.scans import Verdict
from kanban_terminal.tui.palette import ATTENTION, clip

# Neutral unless something needs a look (ISA-101): an accepted scan is plain text.
_STYLES = {Verdict.ACCEPTED: "", Verdict.WARNING: "", Verdict.REJECTED: ATTENTION}
# Widths in cells at 80 columns: a card id is 6-8, a part number up to ~12; "What happened" keeps 32.
TIME_WIDTH, CARD_WIDTH, PART_WIDTH, WHAT_WIDTH = 8, 12, 14, 32
_NARROWEST = 80
_HEADINGS = ("Time", "Card", "Part", "What happened")

Row = tuple[datetime, str, str, Verdict, str]


def column_widths(screen_width: int) -> tuple[int, int, int, int]:
    """Time, Card, Part, What happened: the 80-column widths, plus a wider screen's extra cells
    shared between Card (two fifths) and What happened (three fifths)."""
    extra = max(0, screen_width - _NARROWEST)
    return TIME_WIDTH, CARD_WIDTH + extra * 2 // 5, PART_WIDTH, WHAT_WIDTH + extra * 3 // 5


class RecentScans(Widget):
    """A read-only table (heading line, then one line a scan); it never takes focus away from the
    scan field."""

    can_focus = False
    COMPONENT_CLASSES = {"recent-scans--header", "recent-scans--even-row", "recent-scans--odd-row"}
    # The look of the DataTable it replaces: a bold heading on the panel colour, zebra rows.
    DEFAULT_CSS = """
    RecentScans {
        background: $surface;
        color: $foreground;
        & > .recent-scans--header { text-style: bold; background: $panel; color: $foreground; }
        & > .recent-scans--even-row { background: $surface-darken-1 40%; }
    }
    """

    def __init__(self, *, id: str = "recent-scans") -> None:
        super().__init__(id=id)
        self._rows: tuple[Row, ...] = ()
        self.widths = column_widths(_NARROWEST)
        self._cells: dict[Row, list[Segment]] = {}
        """Each shown row's cells as segments, made once (the row's colours are added per line)."""

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def get_row_at(self, index: int) -> tuple[str, str, str, str]:
        """The cells of row `index` (0: the newest) as shown: clipped to their columns."""
        return self._texts(self._rows[index])

    def _texts(self, row: Row) -> tuple[str, str, str, str]:
        at, card, part, _verdict, what = row
        _, card_w, part_w, what_w = self.widths
        return f"{at.astimezone():%H:%M:%S}", clip(card, card_w), clip(part, part_w), clip(what, what_w)

    def on_resize(self, _event: events.Resize) -> None:
        widths = column_widths(self.app.size.width)
        if widths != self.widths:
            self.widths = widths
            self._cells.clear()
            self.refresh()

    def show_rows(self, rows: Sequence[Row]) -> None:
        self._rows = tuple(rows)
        for gone in set(self._cells) - set(self._rows):
            del self._cells[gone]
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            style = self.get_component_rich_style("recent-scans--header")
            cells = self._line(_HEADINGS, ("",) * 4)
        elif y <= len(self._rows):
            row = self._rows[y - 1]
            # Zebra rows as the DataTable had them: its row index 0 (our line 1) is "even".
            style = self.get_component_rich_style(
                "recent-scans--odd-row" if (y - 1) % 2 else "recent-scans--even-row"
            )
            cells = self._cells.get(row) or self._cells.setdefault(row, self._row_cells(row))
        else:
            return Strip.blank(width, self.rich_style)
        return Strip(Segment.apply_style(cells, style)).adjust_cell_length(width, style)

    def _row_cells(self, row: Row) -> list[Segment]:
        return self._line(self._texts(row), ("", "", "", _STYLES[row[3]]))

    def _line(self, texts: Sequence[str], styles: Sequence[str]) -> list[Segment]:
        """One line of cells, each padded to its column with one space either side."""
        line = Text(no_wrap=True)
        for text, style, width in zip(texts, styles, self.widths, strict=True):
            line.append(" ")
            line.append(text.ljust(width)[:width], style=Style.parse(style) if style else "")
            line.append(" ")
        return list(line.render(self.app.console))
