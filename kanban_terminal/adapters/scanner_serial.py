"""Serial (USB-CDC) barcode scanners: one background reader per port, codes out through a callback.

Serial mode is preferred over keyboard wedge where a scanner offers it: no keyboard layout can remap
its characters (reliability.md finding 11). This adapter only cuts the byte stream into lines and
reports the port's state; it does not normalise codes or touch storage. The terminal passes every
code to the same scan use case as a keyboard scan, and shows `on_state` in the status bar.

Only complete lines count: `read()` returns a partial line when its timeout strikes mid-code
(stack.md section 6), so bytes wait in a buffer, capped so a scanner stuck without terminator cannot
grow it forever. No textual, sqlmodel or paho here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import serial

from kanban_terminal.domain.text import escape_bytes, escape_external

log = logging.getLogger(__name__)

MAX_LINE = 256  # bytes; the longest GS1 DataMatrix payload a line scans is well under this
_READ_TIMEOUT = 0.2  # s; how often the reader looks at the stop flag
_RETRY_MIN = 0.05  # s


class _KeepsWaitingInput(serial.Serial):  # type: ignore[misc]  # pyserial ships no type hints
    """A port whose open keeps what already waits in it.

    pyserial's POSIX `open()` ends with `_reset_input_buffer()` (tcflush), so a card read while the
    terminal was starting, or while the port was being reopened after a replug, was dropped without a
    word, while a keyboard-wedge read made at the same moment was held and recorded
    (tests/tui/test_serial_start_up.py, found by branch floor80). A read that waited is a real read;
    a half line from before the open is cut off by the same line framing as any garbled read and
    shown as a misread, so nothing stale is recorded as a scan. Only the flush inside `open` is
    skipped; `reset_input_buffer()` called later still empties the port."""

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reset_input_buffer(self) -> None:
        if not self._opening:
            super()._reset_input_buffer()


class SerialScanner:
    """Reads one scanner port in a daemon thread; survives unplug/replug by retrying with backoff.

    Callbacks run on the reader thread; a GUI must hand them over to its own thread.
    """

    def __init__(
        self,
        port: str,
        *,
        on_code: Callable[[str, str], None],
        on_state: Callable[[bool, str], None],
        baud: int = 9600,
        terminator: bytes = b"\r",
        source: str | None = None,
        retry_max: float = 5.0,
        on_bad_read: Callable[[str, str], None] | None = None,
    ) -> None:
        """Set up the reader; nothing is opened before `start`.

        Args:
            port: serial device path (a stable /dev/serial/by-id link survives a replug).
            on_code: called with (code, source) for each complete line, terminator removed, as read.
            on_state: called with (connected, detail) when the port opens or is lost.
            baud: baud rate for a real UART (USB-CDC ignores it).
            terminator: the scanner's suffix; b"\\n" is always accepted too, and the empty line a
                CR LF suffix leaves between the two is skipped.
            source: the name reported with each code (default "serial:<port>").
            retry_max: cap of the reopen backoff in seconds.
            on_bad_read: called with (reason, escaped input) for invalid UTF-8 or an overlong line.
        """
        if len(terminator) != 1:
            raise ValueError("terminator must be a single byte")
        self.port = port
        self.baud = baud
        self.source = source or f"serial:{port}"
        self._ends = {terminator[0], 0x0A}
        self._on_code = on_code
        self._on_state = on_state
        self._on_bad_read = on_bad_read
        self._retry_max = retry_max
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"scanner-{port}", daemon=True)
        self._serial: serial.Serial | None = None
        self._buf = bytearray()
        self._overlong = False
        self.bad_reads = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = _RETRY_MIN
        was_connected: bool | None = None
        while not self._stop.is_set():
            try:
                ser = _KeepsWaitingInput(self.port, self.baud, timeout=_READ_TIMEOUT, exclusive=True)
            except (serial.SerialException, OSError, ValueError) as exc:
                if was_connected is not False:  # report the first failure, not every retry
                    self._state(False, f"cannot open {self.port}: {escape_external(str(exc))}")
                    was_connected = False
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = _RETRY_MIN
            self._buf.clear()  # a half line from before the loss belongs to no code
            self._overlong = False
            self._state(True, f"connected {self.port}")
            was_connected = True
            detail = self._read(ser)
            ser.close()
            if not self._stop.is_set():
                self._state(False, detail)
                was_connected = False

    def _read(self, ser: serial.Serial) -> str:
        while not self._stop.is_set():
            try:
                data = ser.read(ser.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as exc:
                return f"disconnected {self.port}: {escape_external(str(exc))}"
            if data:
                self.feed(data)
        return "stopped"

    def feed(self, data: bytes) -> None:
        """Split `data` into lines and hand each complete one on (public for tests with loop://)."""
        for byte in data:
            if byte in self._ends:
                line, self._buf = bytes(self._buf), bytearray()
                if self._overlong:
                    self._overlong = False
                elif line:
                    self._emit(line)
            elif self._overlong:
                continue
            elif len(self._buf) >= MAX_LINE:
                self._bad(f"line longer than {MAX_LINE} bytes dropped", bytes(self._buf))
                self._buf.clear()
                self._overlong = True
            else:
                self._buf.append(byte)

    def _emit(self, line: bytes) -> None:
        try:
            code = line.decode("utf-8")
        except UnicodeDecodeError:
            self._bad("not UTF-8", line)
            return
        try:
            self._on_code(code, self.source)
        except Exception:  # the terminal's bug must not end the reader
            log.exception("on_code failed for %s", self.source)

    def _bad(self, reason: str, raw: bytes) -> None:
        self.bad_reads += 1
        shown = escape_bytes(raw, 80)
        log.warning("%s: bad read (%s): %s", self.source, reason, shown)
        if self._on_bad_read is not None:
            try:
                self._on_bad_read(reason, shown)
            except Exception:
                log.exception("on_bad_read failed for %s", self.source)

    def _state(self, connected: bool, detail: str) -> None:
        try:
            self._on_state(connected, detail)
        except Exception:
            log.exception("on_state failed for %s", self.source)
