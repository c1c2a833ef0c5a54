"""What the screens show, as frozen view models the App hands down (attributes down, messages up).

The App owns the state (last outcome, board, andon board, link, team-lead session) and builds a new
`TerminalView` whenever any of it changes, and once a second for the clock; screens only show what
they are given and report what the operator did with messages. Nothing here reads the terminal or
imports the App: these are plain values, cheap to build and to compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kanban_terminal.domain.scans import Verdict
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.tui.widgets.status_bar import LinkView

if TYPE_CHECKING:  # types only: the services import the storage stack, not needed to paint (issue 15)
    from kanban_terminal.services.andon_views import AndonBoard, LineStateView
    from kanban_terminal.services.queries import Status

RecentRow = tuple[datetime, str, str, Verdict, str]
"""One line of the last scans: when, card (or the code read), part, verdict, what happened."""


@dataclass(frozen=True)
class ScreenChrome:
    """What every screen shows that never changes while the App runs; given at construction."""

    terminal_id: str
    line_name: str
    idle_text: str
    """The banner's text before the first scan (the demo adds its hints here)."""
    live_refresh_seconds: float = 1.0
    """Screens that read history (log, metrics) read again at most this often (tui/live.py)."""
    andon_key: str = "F3"
    """The key that shows the andon screen, as `[keys]` sets it (the call band names it)."""


@dataclass(frozen=True)
class TerminalView:
    """Everything the terminal's screens show, as of `now`. The App replaces it, never mutates it;
    a part that did not change is the same object in the next view, so screens redraw only what
    changed (`is` for the big parts, `==` for the small ones)."""

    now: datetime
    link: LinkView
    last_outcome: ScanOutcome | None = None
    """The last outcome of a scan made at this screen (keyboard or serial), for the banner."""
    scanners: tuple[tuple[str, bool], ...] = ()
    """Serial scanners by name, and whether each is connected."""
    devices: tuple[tuple[str, str, str], ...] = ()
    """Line devices: (name, what it shows, severity ok|warn|alarm|off)."""
    recent: tuple[RecentRow, ...] = ()
    status: Status | None = None
    """The board: loops and open requests (None until the first read)."""
    andon_board: AndonBoard | None = None
    """Active andons and recent history (None until the first read)."""
    auth_text: str = ""
    """Who holds the team-lead session here, in words."""
    events_seen: int = 0
    """How many bus events the App has seen: when it moves, what is stored may have changed, and
    screens that show history read again (tui/live.py)."""
    mono_s: float | None = None
    """The monotonic clock as of `now`: running andon durations count on it, so a wall-clock step
    moves no banner (services/andon_views.py `AndonView.running`)."""

    @property
    def line(self) -> LineStateView | None:
        return self.andon_board.line if self.andon_board else None
