"""The monotonic clock that goes with a terminal's wall clock (no imports beyond the standard library:
the screen reads it every second to count running durations, issue 15 keeps its paint path light)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime


def monotonic_of(clock: Callable[[], datetime]) -> float:
    """The monotonic reading that goes with the terminal's wall clock.

    A clock object that reads both clocks offers `monotonic()` (tests' FakeClock moves them together,
    tests/support/andon.py, and the escalation runner is given the same); the real wall clock does
    not, and goes with time.monotonic, as the runtime's runner does.
    """
    read = getattr(clock, "monotonic", None)
    return float(read()) if callable(read) else time.monotonic()
