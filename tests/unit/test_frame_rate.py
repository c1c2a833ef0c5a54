"""The screen's frame-rate cap is raised before Textual reads it (kanban_terminal/tui/__init__.py):
Textual reads TEXTUAL_FPS once, when it is first imported, so any import of Textual ahead of the tui
package would silently put the scan banner back on 1/60 s slots (issue 15, scan-to-banner)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_app_is_built_with_the_raised_frame_rate() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    probe = "import kanban_terminal.tui.app, textual.constants as c, textual.screen as s; print(c.MAX_FPS)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "240"


def test_a_frame_rate_set_by_the_operator_is_kept() -> None:
    env = {**os.environ, "TEXTUAL_FPS": "30"}
    probe = "import kanban_terminal.tui.app, textual.constants as c; print(c.MAX_FPS)"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "30"
