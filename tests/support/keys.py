"""Keys posted to an App as its input thread would: all at once, stamped a gap apart.

What the App sees when its loop is busy: the order of the queue, not the clock, decides (tests/tui/
test_typing_follows_focus.py, bench/key_hold.py).
"""

from __future__ import annotations

from textual import events
from textual._time import get_time
from textual.app import App
from textual.keys import _character_to_key

Key = tuple[str, str | None]
"""A key's name and the character it types (None for a key that types none)."""


def post(app: App[None], *keys: Key, gap: float) -> None:
    """Post key events as the input thread would, stamped `gap` apart, without waiting between."""
    at = get_time()
    for key, character in keys:
        event = events.Key(key, character)
        event.time = at
        app.post_message(event)
        at += gap


def typed(text: str) -> list[Key]:
    """The keys that type `text`."""
    return [(ch if ch.isalnum() else _character_to_key(ch), ch) for ch in text]
