"""The screen's colours, after ISA-101 ("high-performance HMI"): grey when all is well, colour only
for what is abnormal, and each colour meaning one thing.

- grey: normal, including an accepted scan (it confirms in words and a frame, not in green);
- amber: needs attention (a misread or refused read, an open help CALL, an overdue request, an
  unplugged scanner, a link that is down);
- red: the line is stopped. Nothing else is red, so red on any screen means exactly that.

Issue 15 found a navy header and footer, a green banner for every good scan, green "Upstream:
connected", traffic-light urgency bars on ordinary waiting cards and a rainbow of andon reason
colours: with colour everywhere a real alarm no longer stands out. The theme below takes the blue
out of Textual's chrome (footer, focus frame, table header and cursor); widgets use the style names
here for text inside tables and bars.
"""

from __future__ import annotations

from textual.theme import Theme

AMBER = "#ffbf00"
"""Attention (ISA-101 priority 2/3): background for banners, text colour in tables."""
RED = "#d00000"
"""Line stopped, and only that."""
ATTENTION = f"bold {AMBER}"
"""Rich style for attention inside text (tables, the status bar)."""
STOPPED = f"bold #ffffff on {RED}"
"""Rich style for a line stop inside text."""
QUIET = "dim"
"""Rich style for what may be ignored (an empty queue)."""

FLOOR_THEME = Theme(
    name="floor-grey",
    primary="#8c8c8c",
    secondary="#6e6e6e",
    accent="#d0d0d0",
    warning=AMBER,
    error=RED,
    # "success" drives Textual's own green (toasts, valid inputs): grey here, a good scan is normal.
    success="#8c8c8c",
    foreground="#e0e0e0",
    background="#202020",
    surface="#292929",
    panel="#383838",
    dark=True,
    variables={
        "footer-key-foreground": "#ffffff",
        "footer-background": "#383838",
        "footer-description-foreground": "#d0d0d0",
        "block-cursor-background": "#5a5a5a",
        "block-cursor-foreground": "#ffffff",
        "input-selection-background": "#5a5a5a",
    },
)


def clip(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis: a column's width never follows its input (a
    560-character garbage read widened the Card column until Part and "What happened" fell off the
    80-column screen; the whole read stays in the log and in `rejected`)."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
