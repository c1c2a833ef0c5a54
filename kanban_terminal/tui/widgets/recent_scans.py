"""The last scans under the banner: what happened, newest first.

Columns have fixed widths and long cells are cut with an ellipsis (tui/palette.clip): one 560-char
garbage read widened the Card column until Part and "What happened" left an 80-column screen
(issue 15). The whole read is in the log and in `rejected`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from kanban_terminal.domain.scans import Verdict
from kanban_terminal.tui.palette import ATTENTION, clip

# Neutral unless something needs a look (ISA-101): an accepted scan is plain text.
_STYLES = {Verdict.ACCEPTED: "", Verdict.WARNING: "", Verdict.REJECTED: ATTENTION}
# Widths in cells: a card id is 6-8, a part number up to ~12; at 80 columns "What happened" keeps 32.
CARD_WIDTH, PART_WIDTH, WHAT_WIDTH = 12, 14, 32


class RecentScans(DataTable[Text | str]):
    """A read-only table; it never takes focus away from the scan field."""

    can_focus = False

    def __init__(self, *, id: str = "recent-scans") -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=True)
        # Columns from the start, not on mount: rows may be shown before this table has mounted.
        self.add_column("Time", width=8)
        self.add_column("Card", width=CARD_WIDTH)
        self.add_column("Part", width=PART_WIDTH)
        self.add_column("What happened", width=WHAT_WIDTH)

    def show_rows(self, rows: Sequence[tuple[datetime, str, str, Verdict, str]]) -> None:
        self.clear()
        for at, card, part, verdict, what in rows:
            self.add_row(
                f"{at.astimezone():%H:%M:%S}",
                Text(clip(card, CARD_WIDTH)),
                Text(clip(part, PART_WIDTH)),
                Text(clip(what, WHAT_WIDTH), style=_STYLES[verdict]),
            )
