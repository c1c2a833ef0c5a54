"""The screen's own settings: the `[display]` table of a terminal's config.

Kept apart from config.py (near its size limit) and from the keymap/kiosk settings: these say how
long the screen keeps telling the operator about something, not which keys do what. Like every
config model it is frozen, refuses unknown keys and documents each field.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DisplaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    misread_banner_seconds: float = Field(30.0, ge=1, le=3600)
    """How long a refused read ("SCAN NOT READ", unknown card, ...) stays on the banner when no good
    scan clears it first. Issue 15: a banner that never cleared (5+ minutes, on every screen) hid the
    state of the line behind an old misread; 30 s is long enough to walk back to the screen from the
    bin and read it. The full text stays in the recent-scans list and in `rejected`."""
    live_refresh_seconds: float = Field(1.0, ge=0.2, le=60)
    """The card log (F5) and metrics (F11) screens read again at most this often while new events
    arrive on the bus: they follow the line without re-reading on every one of a burst."""
