"""The status bar's link line, from the runtime's link state or, with no runtime started, the queue.

Kept apart from app.py (which stays under 400 lines) and from the widget (which only shows a
`LinkView`); app.py re-exports `link_view_from`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kanban_terminal.domain.text import escape_external
from kanban_terminal.tui.widgets.status_bar import LinkView

if TYPE_CHECKING:
    from kanban_terminal.runtime import LinkStatus
    from kanban_terminal.services.queries import Status


def offline_link(status: Status | None) -> LinkView:
    """Link view for an app shown without background services (tests): everything stays queued."""
    queued = status.queued if status else 0
    oldest = status.oldest_queued_at if status else None
    return LinkView("offline (no upstream link)", None, queued, oldest, unsent=queued)


def link_view_from(link: LinkStatus) -> LinkView:
    """Status-bar view of the running services' link state."""
    state = "offline (no broker configured)" if link.state == "disabled" else link.state
    return LinkView(
        state,
        link.since,
        link.queued,
        link.oldest_at,
        unsent=link.unsent,
        last_error=escape_external(link.last_error, 60),
    )
