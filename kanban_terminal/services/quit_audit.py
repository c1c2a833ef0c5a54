"""The screen closed, and by whom: a card-log row, like every other audited action.

A kiosk terminal (`run`) quits only with a team lead's badge and PIN (issue 15). Maintenance asking
"why was the screen down from 10:02 to 10:40, and who closed it" found the login row at best, which
does not say what the login was for. So a quit writes `terminal_quit` (actor: the team lead's
badge in kiosk mode; none outside it) before the App exits, and a quit refused by the login (wrong
PIN, no team-lead authority, locked out) writes `terminal_quit_refused` beside the login's own row,
with the reason, as a refused andon action writes `andon_refused`. Leaving the badge prompt with Esc
is not a refusal and writes nothing, as for the other team-lead actions.
"""

from __future__ import annotations

from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services.auth import log_badge_row
from kanban_terminal.services.terminal import Terminal

QUIT = "terminal_quit"
QUIT_REFUSED = "terminal_quit_refused"


def record_quit(terminal: Terminal, badge: str | None, *, source: str, kiosk: bool) -> None:
    """Log that the screen is being closed (call before it exits: the row must be committed)."""
    detail = "kiosk: quit by a team lead" if kiosk else "quit (not a kiosk)"
    _log(terminal, QUIT, badge or None, source, detail)


def record_quit_refused(terminal: Terminal, badge: str, refusal: Rejection, *, source: str) -> None:
    _log(terminal, QUIT_REFUSED, badge.strip().upper(), source, f"quit: {refusal.reason}: {refusal.message}")


def _log(terminal: Terminal, event: str, badge: str | None, source: str, detail: str) -> None:
    now = terminal.clock()
    with terminal.db.unit_of_work() as uow:
        log_badge_row(uow, event, badge, source, detail, now)
