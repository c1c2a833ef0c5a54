"""The help-call band: amber, on every screen while a CALL is open. Hidden otherwise.

Issue 15: once its toast faded, an open help call was visible only on the andon screen, so a team
lead walking past the scan screen could not tell that someone was waiting. It sits where the stop
banner sits, one line per call (at most `MAX_LINES`, then a count), so it costs few rows at 80x24.
Red stays for a stop (tui/palette.py); a call is attention, amber.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.tui.widgets.stop_banner import duration

if TYPE_CHECKING:  # types only: the services import the storage stack, not needed to paint (issue 15)
    from kanban_terminal.services.andon_views import LineStateView

MAX_LINES = 2


class CallBanner(Static):
    """Shows every open help CALL with its station, reason, how long it waits and who responds."""

    def __init__(self, *, andon_key: str = "F3", id: str = "call-banner") -> None:
        super().__init__(id=id)
        self.andon_key = andon_key  # as `[keys]` sets it: the band must name a key that works here
        self.display = False

    def show(self, line: LineStateView | None, now: datetime, mono_s: float | None = None) -> None:
        calls = [
            v for v in (line.active if line else ()) if v.andon.active and v.andon.kind is AndonKind.CALL
        ]
        self.display = bool(calls)
        if not calls:
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        shown = calls if len(calls) <= MAX_LINES else calls[: MAX_LINES - 1]
        for i, v in enumerate(shown):
            a = v.andon
            who = f" - {a.acknowledged_by} responding" if a.acknowledged_by else " - NOT ACKNOWLEDGED"
            text.append("\n" if i else "")
            text.append("HELP CALLED  ", style="bold")
            waited = duration(v.running(now, mono_s).total_seconds())  # elapsed, not wall (a step)
            text.append(f"{a.station}  {v.reason_label}  {waited}{who}")
        if len(calls) > len(shown):
            more = len(calls) - len(shown)
            text.append(f"\n+ {more} more open calls: {self.andon_key} andon", style="bold")
        self.update(text)
