"""The last scans under the banner: what happened, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from kanban_terminal.domain.scans import Verdict

_STYLES = {Verdict.ACCEPTED: "green", Verdict.WARNING: "yellow", Verdict.REJECTED: "bold red"}


class RecentScans(DataTable[Text | str]):
    """A read-only table; it never takes focus away from the scan field."""

    can_focus = False

    def __init__(self, *, id: str = "recent-scans") -> None:
        super().__init__(id=id, cursor_type="none", zebra_stripes=True)
        # Columns from the start, not on mount: rows may be shown before this table has mounted.
        self.add_columns("Time", "Card", "Part", "What happened")

    def show_rows(self, rows: Sequence[tuple[datetime, str, str, Verdict, str]]) -> None:
        self.clear()
        for at, card, part, verdict, what in rows:
            self.add_row(f"{at.astimezone():%H:%M:%S}", card, part, Text(what, style=_STYLES[verdict]))
