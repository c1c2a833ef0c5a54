"""Whether a scan's outcome is also said in a note on top of the screen (issue floor80).

The scan screen's banner grows to hold the whole outcome. The board, andon, log and metrics screens
keep a banner of one or two rows (issue 15: at 80x24 their lists would keep 1-4 rows otherwise), so
it holds the headline only: a misread there said "SCAN NOT READ" without why or what to do, and a
red card said "REFILL REQUESTED" without "RESERVE drawn ... put the card on the reserve rack's
refill board". Such an outcome is said in a note too, as when a dialog covers the banner. A routine
confirmation (refill requested, delivered) is not: its headline says it, and the board shows it;
one note a scan would bury the screen while a person scans a row of cards there.
"""

from __future__ import annotations

from textual.screen import Screen

from kanban_terminal.domain.scans import OutcomeKind, Verdict
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.tui.screens.base import TerminalScreen

_ROUTINE = (OutcomeKind.REQUEST_RAISED, OutcomeKind.DELIVERED)


def said_on_top(screen: Screen[object], outcome: ScanOutcome) -> bool:
    """True when `outcome` must also be a note: its words are not all on `screen`."""
    if not isinstance(screen, TerminalScreen):
        return True  # a dialog covers the banner
    if screen.BANNER_HOLDS_OUTCOME or outcome.kind is OutcomeKind.NEEDS_CONFIRMATION:
        return False  # the whole banner shows, or the confirmation dialog asks in full
    routine = outcome.verdict is Verdict.ACCEPTED and outcome.kind in _ROUTINE
    return not routine or outcome.reserve_drawn
