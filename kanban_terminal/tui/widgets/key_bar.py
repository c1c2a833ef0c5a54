"""The footer, in two rows: this screen's own keys above, the keys that work everywhere below.

Issue 15: at 80 columns one footer row held the screen's keys first and cut the rest, so F10 Quit
and F11 never showed on the scan screen and F5/F6/F10 were hidden on the board and andon screens.
The App's keys (navigation, call, stop, quit) now have a row to themselves and always come first
there; a screen's keys (F7-F9 on the andon screen, Ctrl+F on the log ...) get the row above, which
a screen without keys of its own does not show. Both rows are Textual's Footer, filtered by where a
binding is declared; keys are listed in the order they are declared.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class _KeyRow(Footer):
    """A one-line footer showing only some of the active bindings."""

    DEFAULT_CSS = """
    _KeyRow {
        dock: none;
    }
    """

    def __init__(self, *, app_keys: bool, id: str) -> None:
        super().__init__(compact=True, show_command_palette=False, id=id)
        self.app_keys = app_keys

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        seen: set[str] = set()
        for node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen or isinstance(node, App) is not self.app_keys:
                continue
            seen.add(binding.action)
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if not self.app_keys:
            self.display = bool(seen)


class KeyBar(Vertical):
    """The two key rows, docked at the bottom of a screen."""

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: auto;
    }
    """

    def __init__(self, *, id: str = "key-bar") -> None:
        super().__init__(id=id)

    def compose(self) -> ComposeResult:
        yield _KeyRow(app_keys=False, id="screen-keys")
        yield _KeyRow(app_keys=True, id="app-keys")
