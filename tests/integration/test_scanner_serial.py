"""A serial scanner on a real pty: codes reach the callback, and a replug recovers by itself."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kanban_terminal.adapters.scanner_serial import MAX_LINE, SerialScanner

pytestmark = pytest.mark.pty


class Pty:
    """A pty whose slave is reached through `link`, re-pointed on `replug` like a by-id link."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = self.slave = -1
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = self.link.with_name("tmp-link")
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)


class Recorder:
    def __init__(self) -> None:
        self.codes: list[tuple[str, str]] = []
        self.states: list[bool] = []
        self.bad: list[str] = []
        self.cond = threading.Condition()

    def code(self, code: str, source: str) -> None:
        with self.cond:
            self.codes.append((code, source))
            self.cond.notify_all()

    def state(self, connected: bool, detail: str) -> None:
        with self.cond:
            self.states.append(connected)
            self.cond.notify_all()

    def wait(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not condition():
                left = deadline - time.monotonic()
                assert left > 0, f"timed out: codes={self.codes} states={self.states}"
                self.cond.wait(left)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Pty, Recorder, SerialScanner]]:
    pty = Pty(tmp_path / "ttyScanner")
    rec = Recorder()
    scanner = SerialScanner(
        str(pty.link),
        on_code=rec.code,
        on_state=rec.state,
        source="scanner-1",
        retry_max=0.2,
        on_bad_read=lambda reason, raw: rec.bad.append(reason),
    )
    scanner.start()
    rec.wait(lambda: rec.states == [True])
    yield pty, rec, scanner
    scanner.stop()
    pty.unplug()


def test_codes_reach_the_callback(rig: tuple[Pty, Recorder, SerialScanner]) -> None:
    pty, rec, _ = rig
    pty.write(b"40063813")
    pty.write(b"33931\r")
    pty.write(b"K-7Q2 \r\n")  # CR LF suffix: one code, no empty one; inner/trailing space kept
    pty.write(b"\x1b[2J\r")  # passed as read: the terminal normalises and escapes, not the adapter
    rec.wait(lambda: len(rec.codes) == 3)
    assert rec.codes == [("4006381333931", "scanner-1"), ("K-7Q2 ", "scanner-1"), ("\x1b[2J", "scanner-1")]


def test_unplug_and_replug_report_state_and_recover(rig: tuple[Pty, Recorder, SerialScanner]) -> None:
    pty, rec, scanner = rig
    for n in range(3):
        pty.unplug()
        rec.wait(lambda n=n: rec.states[-1] is False and len(rec.states) == 2 * n + 2)
        pty.plug()
        rec.wait(lambda n=n: rec.states[-1] is True and len(rec.states) == 2 * n + 3)
    pty.write(b"AFTER-REPLUG\r")
    rec.wait(lambda: rec.codes == [("AFTER-REPLUG", "scanner-1")])
    assert scanner.alive


def _offline_scanner(rec: Recorder) -> SerialScanner:
    return SerialScanner(
        "/nonexistent",
        on_code=rec.code,
        on_state=rec.state,
        on_bad_read=lambda reason, raw: rec.bad.append(reason),
    )


def test_only_complete_lines_count_and_overlong_input_is_dropped() -> None:
    rec = Recorder()
    scanner = _offline_scanner(rec)
    scanner.feed(b"123")  # what a read timeout mid-code hands over
    assert rec.codes == []
    scanner.feed(b"45\r")
    scanner.feed(b"X" * (MAX_LINE * 10))
    scanner.feed(b"more\rNEXT\n")
    assert [c for c, _ in rec.codes] == ["12345", "NEXT"]
    assert rec.bad == [f"line longer than {MAX_LINE} bytes dropped"]


def test_invalid_utf8_is_a_bad_read_not_a_code() -> None:
    rec = Recorder()
    scanner = _offline_scanner(rec)
    scanner.feed(b"\xff\xfe12\rOK\r")
    assert [c for c, _ in rec.codes] == ["OK"]
    assert rec.bad == ["not UTF-8"] and scanner.bad_reads == 1


def test_adapter_imports_no_ui_or_storage() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kanban_terminal.adapters.scanner_serial; "
        "bad = [m for m in ('textual', 'sqlmodel', 'sqlalchemy', 'paho') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
