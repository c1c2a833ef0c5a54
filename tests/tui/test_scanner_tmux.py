"""A scanner read while the F4 picker is open, in a real terminal (tmux) at 80x24 (issue 15, finding 1).

`tmux send-keys` of a whole code and Enter writes the keys to the pty back to back, as a
keyboard-wedge scanner does: the app reads them within a millisecond of each other. Before the
fix, the picker took the Enter and raised "CALL ... Material shortage", and the card was never
recorded. Now the card is recorded (its log rows) and no andon exists.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_terminal.config import demo_config_path
from tests.faults import support
from tests.support.mqtt_lines import wait_for

pytestmark = [pytest.mark.pty]
CARD = "B1001Z"  # the demo line's first card


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`run` on the demo line's config in tmux at 80x24; yields (session, database)."""
    support.need("tmux", "tmux")
    session = f"kanban-scan-wins-{os.getpid()}"
    data = tmp_path / "data"
    command = [sys.executable, "-m", "kanban_terminal", "run", "--config", str(demo_config_path())]
    command += ["--data-dir", str(data)]
    env = [f"PYTHONPATH={support.ROOT}", "TERM=xterm-256color"]
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", "env", *env, *command)
    try:
        # The scan screen shows before the runtime is up (tui/boot.py); F4 needs it: wait until the
        # status bar no longer says the link is starting.
        def up() -> bool:
            pane = tmux("capture-pane", "-p", "-t", session)
            return "Scan a kanban card" in pane and "Upstream: starting" not in pane

        wait_for(up, 60, "screen up")
        yield session, data / "terminal.db"
    finally:
        tmux("kill-session", "-t", session)


def test_a_scan_while_the_call_picker_is_open_is_recorded_and_raises_nothing(
    screen: tuple[str, Path],
) -> None:
    session, db_path = screen
    tmux("send-keys", "-t", session, "F4")
    wait_for(lambda: "CALL FOR HELP" in tmux("capture-pane", "-p", "-t", session), what="the picker")
    tmux("send-keys", "-t", session, CARD, "Enter")  # a scanner: the whole read, then Enter

    def events() -> list[str]:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT event FROM card_log WHERE card_id = ? ORDER BY id", (CARD,))
            return [r[0] for r in rows]

    wait_for(lambda: "request_raised" in events(), what="the card recorded")
    assert events() == ["registered", "bin_empty", "request_raised"]
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM andon").fetchone() == (0,)
    assert "CALL FOR HELP" in tmux("capture-pane", "-p", "-t", session)  # the picker is still open


def test_text_typed_right_after_f5_and_ctrl_f_lands_in_the_filter(screen: tuple[str, Path]) -> None:
    """A person who knows the keys: F5, Ctrl+F, then types at once (100 ms a key) without waiting
    for the log screen to show. On main the text landed in the scan field (Textual moved the focus
    behind the keys already queued)."""
    session, _db = screen
    tmux("send-keys", "-t", session, "F5")
    tmux("send-keys", "-t", session, "C-f")
    for ch in CARD:  # by hand: a card number to filter on
        time.sleep(0.1)
        tmux("send-keys", "-t", session, "-l", ch)

    def filter_line() -> str:
        lines = tmux("capture-pane", "-p", "-t", session).splitlines()
        return next((line for line in lines if "Filter (Ctrl+F):" in line), "")

    wait_for(lambda: CARD in tmux("capture-pane", "-p", "-t", session), what="the typed text shown")
    assert filter_line().split("Filter (Ctrl+F):")[1].strip() == CARD
    pane = tmux("capture-pane", "-p", "-t", session).splitlines()
    assert CARD not in pane[2]  # the scan field's row: still empty
