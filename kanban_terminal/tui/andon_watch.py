"""The screen sees andon changes made through another door: the CLI, or another process.

An andon raised, acknowledged, resolved or cancelled by another process sends no event on this
process's bus, and the andon board was read again only on such events: a stop resolved from the CLI
stayed LINE STOPPED on the screen until a restart. Every 2 s (the board's own status poll) one small
read (`attention_marks`: id and state of the andons needing attention) tells whether the board must
be read again; in-process changes still refresh it at once through their events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work

if TYPE_CHECKING:
    from textual.app import App

    from kanban_terminal.services.terminal import Terminal

    _Base = App[None]
else:
    _Base = object

LOOK_EVERY_S = 2
"""Seconds between looks, counted in the andon mixin's one-second ticks."""


class AndonWatchMixin(_Base):
    terminal: Terminal
    _andon_marks: tuple[tuple[str, str], ...] | None = None
    _andon_ticks = 0

    def andon_changed_elsewhere(self) -> None:
        """Read the board again (the andon mixin)."""
        raise NotImplementedError

    def look_for_andon_changes(self) -> None:
        """Called once a second; looks every `LOOK_EVERY_S`."""
        self._andon_ticks += 1
        if self._andon_ticks % LOOK_EVERY_S == 0:
            self._look()

    @work(thread=True, group="andon-look", exclusive=True, description="look for andon changes")
    def _look(self) -> None:
        from kanban_terminal.services.andon_views import attention_marks
        from kanban_terminal.storage.errors import STORAGE_ERRORS

        try:
            marks = attention_marks(self.terminal)
        except STORAGE_ERRORS:
            return  # a busy or failing file: the next look tries again; the board says the rest
        seen, self._andon_marks = self._andon_marks, marks
        if marks != seen:  # the first look too: a change just after start came before any baseline
            self.call_from_thread(self.andon_changed_elsewhere)
