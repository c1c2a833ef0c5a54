"""The last scans under the banner: what happened, newest first.

Columns have fixed widths that follow the screen's width, never the input's, and long cells are cut
with an ellipsis (tui/palette.clip): one 560-char garbage read widened the Card column until Part
and "What happened" left an 80-column screen (issue 15). The whole read is in the log and in
`rejected`. At 80 columns the widths are those below; a wider screen gives its extra columns to
Card and "What happened" (escaped outside text stays readable there).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from kanban_terminal.domain.scans import Verdict
from kanban_terminal.tui.palette import ATTENTION, clip

# Neutral unless something needs a look (ISA-101): an accepted scan is plain text.
_STYLES = {Verdict.ACCEPTED: "", Verdict.WARNING: "", Verdict.REJECTED: ATTENTION}
# Widths in cells at 80 columns: a card id is 6-8, a part number up to ~12; "What happened" keeps 32.
TIME_WIDTH, CARD_WIDTH, PART_WIDTH, WHAT_WIDTH = 8, 12, 14, 32
_NARROWEST = 80


Row = tuple[datetime, str, str, Verdict, str]


def column_widths(screen_width: int) -> tuple[int, int, int, int]:
    """Time, Card, Part, What happened: the 80-column widths, plus a wider screen's extra cells
    shared between Card (two fifths) and What happened (three fifths)."""
    extra = max(0, screen_width - _NARROWEST)
    return TIME_WIDTH, CARD_WIDTH + extra * 2 // 5, PART_WIDTH, WHAT_WIDTH + extra * 3 // 5


class RecentScans(DataTable[Text | str]):
    """A read-only table; it never takes focus away from the scan field."""

    can_focus = False

    def __init__(self, *, id: str = "recent-scans") -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=True)
        self._rows: tuple[Row, ...] = ()
        self._widths = column_widths(_NARROWEST)
        # Columns from the start, not on mount: rows may be shown before this table has mounted.
        self._add_columns()

    def _add_columns(self) -> None:
        for label, width in zip(("Time", "Card", "Part", "What happened"), self._widths, strict=True):
            self.add_column(label, width=width)

    def on_resize(self, event: events.Resize) -> None:
        widths = column_widths(self.app.size.width)
        if widths != self._widths:
            self._widths = widths
            self.clear(columns=True)
            self._add_columns()
            self.show_rows(self._rows)

    def show_rows(self, rows: Sequence[Row]) -> None:
        self._rows = tuple(rows)
        self.clear()
        _, card_w, part_w, what_w = self._widths
        for at, card, part, verdict, what in self._rows:
            self.add_row(
                f"{at.astimezone():%H:%M:%S}",
                Text(clip(card, card_w)),
                Text(clip(part, part_w)),
                Text(clip(what, what_w), style=_STYLES[verdict]),
            )
