"""The line-stop banner: red, bold, on every screen while any STOP is active. Hidden otherwise.

A stopped line must be unmissable from wherever the operator is (Toyota Way Fieldbook: lights alone
get ignored), so it sits right under the status bar of every screen, above the scan field.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from kanban_terminal.domain.andon import AndonKind

if TYPE_CHECKING:  # types only: the services import the storage stack, not needed to paint (issue 15)
    from kanban_terminal.services.andon_views import LineStateView


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class StopBanner(Static):
    """Shows every active STOP with its station, reason and running downtime."""

    def __init__(self, *, id: str = "stop-banner") -> None:
        super().__init__(id=id)
        self.display = False

    def show(self, line: LineStateView | None, now: datetime, mono_s: float | None = None) -> None:
        stops = [
            v for v in (line.active if line else ()) if v.andon.active and v.andon.kind is AndonKind.STOP
        ]
        self.display = bool(stops)
        if not stops:
            return
        text = Text(justify="center", no_wrap=True, overflow="ellipsis")
        # One line per stop, no frame: at 80x24 a framed banner left the board 1-4 rows (issue 15).
        for i, v in enumerate(stops):
            a = v.andon
            who = f" - {a.acknowledged_by} responding" if a.acknowledged_by else " - NOT ACKNOWLEDGED"
            text.append("\n" if i else "")
            text.append("LINE STOPPED  ", style="bold")
            down = duration(v.running(now, mono_s).total_seconds())  # elapsed, not wall (a step)
            text.append(f"{a.station}  {v.reason_label}  {down}{who}")
        self.update(text)
