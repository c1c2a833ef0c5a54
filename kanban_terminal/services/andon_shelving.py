"""Shelving a chattering andon source: the andon use case that touches no andon event.

Split from andon.py, which re-exports `shelve_source` for the callers that import it from there.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from kanban_terminal.domain import andon as rules
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.andon_log import log_refusal
from kanban_terminal.services.andon_outcomes import AndonOutcome, authority, refused_outcome
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow

if TYPE_CHECKING:
    from kanban_terminal.services.auth import AuthSession


def shelve_source(
    terminal: Terminal, source_id: str, minutes: float, *, source: str, auth: AuthSession | None
) -> AndonOutcome:
    """Shelve a chattering andon source (a device id) for a bounded time; its signals are still logged."""
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    max_duration = timedelta(minutes=terminal.config.andon.shelve_max_minutes)
    decided = rules.decide_shelve(
        source_id, timedelta(minutes=minutes), max_duration, now, authorised=authorised
    )
    with terminal.db.unit_of_work() as uow:
        if isinstance(decided, Rejection):
            log_refusal(uow, "shelve", decided, actor=badge, source=source, now=now)
        else:
            assert badge is not None
            uow.andons.shelve(source_id, badge, now, decided.until)
            uow.andons.log(
                CardLogRow(
                    occurred_at=now, recorded_at=now, event="andon_shelved", actor=badge,
                    source=escape_external(source, 80),
                    detail=f"source {source_id} shelved until {decided.until:%H:%M} UTC",
                ),
            )  # fmt: skip
    if isinstance(decided, Rejection):
        return refused_outcome(terminal, "shelve", decided, source)
    return AndonOutcome(True, f"{source_id} shelved until {decided.until.astimezone():%H:%M}.")
