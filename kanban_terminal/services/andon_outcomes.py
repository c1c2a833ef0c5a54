"""What an andon action gives back and announces, and who it acts for.

`AndonOutcome` is the words for the person who asked; `AndonChanged`, `LineStateChanged` and
`AndonRefused` are the bus events, collected by the unit of work and published after the commit;
`authority` is the badge a use case acts for. Split from andon.py (which re-exports every name here)
so the use cases have room; the shelving use case is in andon_shelving.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services.andon_views import AndonView, LineStateView
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from kanban_terminal.services.auth import AuthSession


@dataclass(frozen=True)
class AndonOutcome:
    """What an andon action did, in words for the person who asked."""

    ok: bool
    message: str
    andon: AndonView | None = None
    rejection: Rejection | None = None


# -- bus events (published after the commit) -------------------------------------------------------


@dataclass(frozen=True)
class AndonChanged:
    """An andon event was raised, acknowledged, resolved, cancelled or escalated."""

    action: str
    view: AndonView
    actor: str | None
    at: datetime
    tier: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class LineStateChanged:
    view: LineStateView


@dataclass(frozen=True)
class AndonRefused:
    """An andon action was refused: shown on screen, already logged."""

    action: str
    rejection: Rejection
    source: str


def authority(terminal: Terminal, auth: AuthSession | None, source: str) -> tuple[str | None, bool]:
    """(badge, authorised) of the logged-in team lead; an idle session ends here, logged."""
    if auth is None:
        return None, False
    state = auth.current(terminal, source=source)
    if state is None:
        return None, False
    auth.touch(terminal)
    # Imported by the first badge action, not with the module: `serve` never logs anyone in
    # (services.auth + domain.auth, ~80 KB of RSS; issue 19).
    from kanban_terminal.domain.auth import has_authority

    return state.badge, has_authority(state.role)


def refused_outcome(terminal: Terminal, action: str, rejection: Rejection, source: str) -> AndonOutcome:
    terminal.bus.publish(AndonRefused(action, rejection, source))
    return AndonOutcome(False, rejection.message, rejection=rejection)


def _done(
    uow: UnitOfWork, action: str, view: AndonView, line: LineStateView, actor: str | None, at: datetime
) -> AndonOutcome:
    """Announce a change once `uow` commits; the words for the person who asked."""
    uow.collect(AndonChanged(action, view, actor, at))
    uow.collect(LineStateChanged(line))
    return AndonOutcome(
        True,
        _MESSAGES[action].format(label=view.reason_label, a=view.andon, kind=view.andon.kind.value.upper()),
        view,
    )


_MESSAGES = {
    "raised": "{kind} raised at {a.station}: {label}. Help is being called.",
    "acknowledged": "Acknowledged by {a.acknowledged_by}: {label} at {a.station}.",
    "resolved": "Resolved: {label} at {a.station}.",
    "cancelled": "Call cancelled: {label} at {a.station}.",
}
