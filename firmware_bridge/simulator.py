"""A Python stand-in for the line-side device, speaking the firmware protocol on a pseudo-terminal.

Used by the integration tests, by `firmware-bridge simulate`, and by the terminal's demo when it asks
for simulated hardware. It behaves like `firmware/main.py`: HELLO at boot, HB on a timer, BIN and BTN
events with a rising seq; it records the frames the host sends it (LIGHT, BUZZ, ACK; the last
`RECEIVED_KEPT`) so a test can assert what the stack light would show. It does not retransmit on a
missing ACK by itself: a test replays a frame with `send_raw` when it wants a retransmission.

The slave side of the pty is what the bridge opens; `link` is an optional symlink to it, re-pointed
atomically by `reopen()`, which plays the part of a /dev/serial/by-id link across a replug.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path

from firmware_bridge.framing import SEQ_MODULO, Frame, FrameDecoder, FrameType, encode

RECEIVED_KEPT = 10_000
"""Host frames a simulator remembers, newest last: hours of a demo's lamps and ACKs, and far more
than any test looks back on. Unbounded, the demo's memory grew for as long as it ran."""


class DeviceSimulator:
    """One simulated device on its own pty. Thread-safe; every public method may be called any time."""

    def __init__(self, device_id: str, *, link: Path | None = None, firmware: str = "sim-1.0") -> None:
        self.device_id = device_id
        self.link = link
        self.firmware = firmware
        self.boot = secrets.token_hex(4).upper()
        self.seq = 0
        self.received: deque[Frame] = deque(maxlen=RECEIVED_KEPT)
        self.decoder = FrameDecoder()
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self.slave_path = ""
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._beater: threading.Thread | None = None
        self._beat_stop = threading.Event()

    # --- pty lifecycle ----------------------------------------------------------------------------

    def open(self) -> str:
        """Create the pty (and the link), start reading host frames; return the path to open."""
        self._master, self._slave = os.openpty()
        # Raw at once: with the default echo on, our own frames would come back as host frames
        # until the bridge opens the port and pyserial sets raw mode itself.
        tty.setraw(self._slave)
        # Non-blocking: with nobody reading the slave, a full pty buffer drops bytes (as a device's
        # full USB buffer would) instead of blocking the simulator forever.
        os.set_blocking(self._master, False)
        self.slave_path = os.ttyname(self._slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            os.replace(tmp, self.link)
        self._stop.clear()
        self._reader = threading.Thread(
            target=self._read, args=(self._master,), name="sim-reader", daemon=True
        )
        self._reader.start()
        return str(self.link) if self.link is not None else self.slave_path

    def close(self) -> None:
        """Pull the plug: both pty ends close, the bridge's next read fails."""
        self._stop.set()
        if self._reader is not None:
            self._reader.join(2.0)
        with self._write_lock:  # a heartbeat must not write to a closed (and maybe reused) fd number
            for fd in (self._master, self._slave):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = -1

    def reopen(self) -> str:
        """Plug back in: a new pty behind the same link path."""
        self.close()
        return self.open()

    def start_heartbeat(self, interval: float = 1.0) -> None:
        """Send HB every `interval` seconds until `stop`, as the firmware does."""
        self._beater = threading.Thread(
            target=self._beat, args=(interval,), name="sim-heartbeat", daemon=True
        )
        self._beater.start()

    def stop(self) -> None:
        """Stop beating, close the pty and remove the link (a dangling link would look like a port)."""
        self._beat_stop.set()
        if self._beater is not None:
            self._beater.join(2.0)
        self.close()
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    # --- device -> host ---------------------------------------------------------------------------

    def hello(self) -> bytes:
        return self._send(FrameType.HELLO, self.firmware)

    def heartbeat(self) -> bytes:
        return self._send(FrameType.HB)

    def press(self, action: str = "call", station: str = "S1", reason: str = "") -> bytes:
        """The andon button: action is call, stop or cancel."""
        return self._send(FrameType.BTN, action, station, *([reason] if reason else []))

    def bin(self, bin_id: str, state: str = "empty") -> bytes:
        """The bin sensor: state is empty or full."""
        return self._send(FrameType.BIN, bin_id, state)

    def reboot(self) -> bytes:
        """A new boot id and seq from 0, announced by HELLO."""
        self.boot = secrets.token_hex(4).upper()
        self.seq = 0
        return self.hello()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are: corrupt frames, garbage, replays."""
        with self._write_lock:
            self._write(data)

    def corrupt(self, flip_at: int = 5) -> bytes:
        """Send an event frame with one byte changed; the bridge must drop it."""
        with self._write_lock:
            frame = bytearray(self._frame(FrameType.BTN, "call", "S1"))
            frame[flip_at] ^= 0x01
            self._write(bytes(frame))
        return bytes(frame)

    # --- host -> device ---------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = 5.0) -> Frame | None:
        """The first received host frame matching `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for frame in self.received:
                    if predicate(frame):
                        return frame
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    # --- internals --------------------------------------------------------------------------------

    def _frame(self, type_: FrameType, *args: str) -> bytes:
        frame = encode(Frame(self.device_id, type_, self.boot, self.seq, tuple(args)))
        self.seq = (self.seq + 1) % SEQ_MODULO
        return frame

    def _send(self, type_: FrameType, *args: str) -> bytes:
        with self._write_lock:  # seq order on the wire must match seq order of creation
            data = self._frame(type_, *args)
            self._write(data)
        return data

    def _write(self, data: bytes) -> None:
        if self._master >= 0:
            with contextlib.suppress(OSError):  # unplugged: the bytes are lost, as on a real cable
                os.write(self._master, data)

    def _read(self, master: int) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return  # closed under us, or the slave side hung up
            if not data:
                return
            frames = [item for item in self.decoder.feed(data) if isinstance(item, Frame)]
            if frames:
                with self._cond:
                    self.received.extend(frames)
                    self._cond.notify_all()

    def _beat(self, interval: float) -> None:
        self.heartbeat()
        while not self._beat_stop.wait(interval):
            self.heartbeat()
