"""S7 on a real screen: control, escape and bidi characters from outside never reach the terminal.

The terminal screen runs in tmux (a real terminal emulator). A serial scanner reads a hostile label
(an OSC title change, a clear-screen CSI, a right-to-left override), and a bin signal over MQTT
carries the same in its fields. tmux's own view of the screen (`capture-pane -e`, which keeps the
colour sequences the app legitimately sends) must hold none of them raw, the window title must be
untouched, and the operator must see the escaped text instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kanban_terminal.topics import LineTopics
from tests.faults import support
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.pty]
TOPICS = LineTopics("S1", "L1")
HOSTILE = "\x1b]0;PWNED\x07B10\x1b[2J01Z\u202e"
SGR = re.compile(r"\x1b\[[0-9;:]*m")  # colour and style: what the app itself may send


def tmux(*args: str) -> str:
    run = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)
    return run.stdout


@pytest.fixture
def screen(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """The terminal screen in tmux with a serial scanner on a pty; yields (session, pty master, port)."""
    support.need("tmux", "tmux")
    master, slave = os.openpty()
    config, path = make_config(tmp_path, loops=1, cards=5, sensors=2)
    scanner = f'\n[[scanners]]\nname = "ST1"\nport = "{os.ttyname(slave)}"\nterminator = "CR"\n'
    path.write_text(path.read_text() + scanner)
    broker = Mosquitto(tmp_path / "broker").start()
    session = f"kanban-s7-{os.getpid()}"
    command = [sys.executable, "-m", "kanban_terminal", "run", "--config", str(path)]
    command += ["--data-dir", str(tmp_path / "data"), "--mqtt", broker.url]
    env = [f"PYTHONPATH={support.ROOT}", "TERM=xterm-256color"]
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", "env", *env, *command)
    try:
        wait_for(lambda: "ST1 ok" in tmux("capture-pane", "-p", "-t", session), timeout=60, what="screen up")
        wait_for(lambda: "Upstream: connected" in tmux("capture-pane", "-p", "-t", session), what="link up")
        yield session, master, broker.port
    finally:
        tmux("kill-session", "-t", session)
        os.close(master)
        os.close(slave)
        broker.stop()


def test_hostile_text_from_a_scanner_and_a_sensor_is_shown_escaped(screen: tuple[str, int, int]) -> None:
    session, master, port = screen
    title_before = tmux("display-message", "-p", "-t", session, "#{pane_title}")
    os.write(master, HOSTILE.encode() + b"\r")
    wait_for(lambda: "Not read" in tmux("capture-pane", "-p", "-t", session), what="the misread shown")
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    signal = {"v": 1, "id": "BS1:b:1", "device": "BS1", "boot": "b", "seq": 1, "type": HOSTILE, "at": at}
    publish_raw(port, [(TOPICS.device_signal("BS1"), json.dumps(signal).encode())])
    wait_for(lambda: "Signal refused" in tmux("capture-pane", "-p", "-t", session), what="the refusal shown")
    # The operator sees what was read, escaped: the proof the text was drawn, not dropped. Every
    # look at the screen is one capture with its colour sequences (-e), checked whole: the screen
    # keeps changing (clock, notifications timing out), so two captures are not the same screen.
    seen: list[str] = []

    def escaped_text_on_screen() -> bool:
        seen.append(tmux("capture-pane", "-p", "-e", "-t", session))
        plain = SGR.sub("", seen[-1])
        return "\\x1b" in plain and "PWNED" in plain

    wait_for(escaped_text_on_screen, what="escaped text shown")
    for raw in seen:
        for bad in ("\x1b]", "\x1b[2J", "\x07", "\u202e"):
            assert bad not in raw, f"{bad!r} reached the screen"
    assert "PWNED" not in tmux("display-message", "-p", "-t", session, "#{pane_title}")
    assert tmux("display-message", "-p", "-t", session, "#{pane_title}") == title_before
