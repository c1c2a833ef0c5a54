"""One serial port kept open for as long as the bridge runs, across unplug and replug.

A USB device that is pulled makes pyserial raise `SerialException` ("device reports readiness to
read but returned no data", pyserial#341). The link then closes the port, reports the loss, and keeps
trying to reopen the *configured path* with a capped backoff: the path should be a stable
/dev/serial/by-id link, because the kernel may hand the replugged device another ttyACM number.
This module moves bytes only; framing is `framing.py`'s job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import serial

from kanban_terminal.domain.text import escape_external

log = logging.getLogger(__name__)

_READ_TIMEOUT = 0.2  # s; how often the reader looks at the stop flag when the device is silent
_RETRY_MIN = 0.05  # s; first retry is quick, a replug often only needs udev to settle


class SerialLink:
    """A background reader thread for one port; `send` may be called from any thread."""

    def __init__(
        self,
        path: str,
        baud: int,
        *,
        on_data: Callable[[bytes], None],
        on_state: Callable[[bool, str], None],
        retry_max: float = 5.0,
        name: str = "serial",
    ) -> None:
        self.path = path
        self.baud = baud
        self._on_data = on_data
        self._on_state = on_state
        self._retry_max = retry_max
        self._port: serial.Serial | None = None
        self._lock = threading.Lock()  # guards _port between the reader and writers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serial-{name}", daemon=True)
        self.opens = 0
        self.losses = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def connected(self) -> bool:
        return self._port is not None

    def send(self, data: bytes) -> bool:
        """Write `data` if the port is open; False (and nothing queued) if it is not."""
        with self._lock:
            if self._port is None:
                return False
            try:
                self._port.write(data)
                return True
            except (serial.SerialException, OSError) as exc:
                # The reader sees the same loss on its next read and does the reporting.
                log.debug("write to %s failed: %s", self.path, escape_external(str(exc)))
                return False

    def _run(self) -> None:
        delay = _RETRY_MIN
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                self._stop.wait(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = _RETRY_MIN
            self._report(True, f"open {self.path}")
            detail = self._read_until_lost(port)
            self._close()
            if not self._stop.is_set():
                self.losses += 1
                self._report(False, detail)

    def _open(self) -> serial.Serial | None:
        try:
            # exclusive: a second bridge (or a terminal) on the same port would split the byte stream.
            port = serial.Serial(
                self.path, self.baud, timeout=_READ_TIMEOUT, write_timeout=1.0, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            log.debug("cannot open %s: %s", self.path, escape_external(str(exc)))
            return None
        with self._lock:
            self._port = port
        self.opens += 1
        return port

    def _read_until_lost(self, port: serial.Serial) -> str:
        while not self._stop.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial 3.5 can trip over a port closed under it by `stop`.
                return f"lost {self.path}: {escape_external(str(exc))}"
            if data:
                try:
                    self._on_data(data)
                except Exception:  # a bug in a consumer must not end the port's life
                    log.exception("on_data for %s failed", self.path)
        return "stopped"

    def _close(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("close %s: %s", self.path, escape_external(str(exc)))

    def _report(self, connected: bool, detail: str) -> None:
        try:
            self._on_state(connected, detail)
        except Exception:
            log.exception("on_state for %s failed", self.path)
