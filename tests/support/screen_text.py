"""What a person reads on the screen: the App's frame as text, as the terminal would show it (issue
floor80: messages at 80x24 must be whole, not cut mid-word nor hidden behind something else).

`screen_lines` renders the same frame `App.export_screenshot` does (the shown screen over the ones
behind it, toasts included) into plain text. `reads` asks whether a message is on screen whole: its
words in order, wrapped anywhere between words, inside one widget's rectangle, frames and the
scrollbar left out. A message cut at the edge, cut mid-word or covered by another widget fails it.
"""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console
from textual.app import App
from textual.geometry import Region
from textual.widget import Widget

# Box drawing, block elements (Textual's tall borders and scrollbars): a frame, not words.
_FRAME = re.compile(r"[\u2500-\u259f]")


def screen_lines(app: App[Any]) -> list[str]:
    """The whole frame, one string a row, each exactly the screen's width."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, record=True, legacy_windows=False
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    rows = console.export_text().split("\n")[:height]
    return [row.ljust(width) for row in rows]


def rows_in(app: App[Any], region: Region) -> list[str]:
    """The words shown on each row of `region`, frames left out."""
    rows = screen_lines(app)[region.y : region.bottom]
    return [" ".join(_FRAME.sub(" ", row[region.x : region.right]).split()) for row in rows]


def text_in(app: App[Any], region: Region) -> str:
    """The words shown inside `region` of the screen, rows joined by a space."""
    return " ".join(rows_in(app, region)).strip()


def words(message: str) -> str:
    """`message` as `rows_in` reads it: one space between words, box and block characters left out
    (a sparkline's bars are block characters too)."""
    return " ".join(_FRAME.sub(" ", message).split())


def reads(app: App[Any], message: str, where: Widget | None = None) -> bool:
    """True when `message` is on screen whole (inside `where`, or anywhere on one stretch of rows)."""
    region = where.region if where is not None else Region(0, 0, *app.size)
    return words(message) in text_in(app, region)
