"""Frames of the firmware line protocol: encode, decode, CRC, resynchronisation. Pure: no I/O, no clock.

Wire form (docs/FIRMWARE_PROTOCOL.md):  ``$<device>,<TYPE>,<boot>,<seq>[,<field>...]*<CRC>\\n``

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over the bytes between ``$`` and ``*``,
written as 4 upper-case hex digits. A 16-bit CRC detects every burst of up to 16 bits; random
well-framed garbage passes it with p = 2^-16, so the field checks below are a second filter, not
decoration (reliability.md finding 12). Timing gaps do not survive USB-CDC buffering, hence delimiter
framing: ``$`` starts a frame, ``\\n`` ends it, and either one resynchronises the decoder.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

MAX_FRAME = 128  # bytes, from "$" to "\n" inclusive; a MicroPython device can hold that on its stack
SEQ_MODULO = 1 << 16
START = 0x24  # "$"
END = 0x0A  # "\n"


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (check value for b"123456789" is 0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


class FrameType(StrEnum):
    """Message types; the first four go device -> host, the last three host -> device."""

    HELLO = "HELLO"
    HB = "HB"
    BIN = "BIN"
    BTN = "BTN"
    LIGHT = "LIGHT"
    BUZZ = "BUZZ"
    ACK = "ACK"


class ErrorKind(StrEnum):
    """Why a run of bytes was not a frame; each has its own counter."""

    NOISE = "noise"  # bytes outside any frame
    TRUNCATED = "truncated"  # a "$" arrived before the previous frame ended
    OVERLONG = "overlong"  # no "\n" within MAX_FRAME bytes
    SYNTAX = "syntax"  # not $<printable ASCII>*<4 hex>
    CRC = "crc"
    FIELDS = "fields"  # CRC fine, but ids, seq or arguments invalid
    UNKNOWN_TYPE = "unknown_type"


_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_BOOT = re.compile(r"[0-9A-F]{8}")
_SEQ = re.compile(r"0|[1-9][0-9]{0,4}")
_VERSION = re.compile(r"[A-Za-z0-9_.+-]{1,24}")
_OPT_ID = re.compile(r"[A-Za-z0-9_.-]{0,32}")
_LAMP = re.compile(r"on|off|blink")
_ONOFF = re.compile(r"on|off")
_BIN_STATE = re.compile(r"empty|full")
_BTN_ACTION = re.compile(r"call|stop|cancel")

# Argument patterns per type; a trailing optional argument is marked by the _OPT_ID pattern.
_ARGS: dict[FrameType, tuple[re.Pattern[str], ...]] = {
    FrameType.HELLO: (_VERSION,),
    FrameType.HB: (),
    FrameType.BIN: (_ID, _BIN_STATE),
    FrameType.BTN: (_BTN_ACTION, _ID, _OPT_ID),
    FrameType.LIGHT: (_LAMP, _LAMP, _LAMP),
    FrameType.BUZZ: (_ONOFF,),
    FrameType.ACK: (_SEQ,),
}
_FRAME = re.compile(rb"\$([\x20-\x23\x25-\x29\x2b-\x7e]{1,121})\*([0-9A-F]{4})\r?")


@dataclass(frozen=True)
class Frame:
    """One checked frame. `args` are the type-specific fields after the sequence number."""

    device: str
    type: FrameType
    boot: str
    seq: int
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _check(self.device, self.type, self.boot, self.seq, self.args)
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class FrameError:
    """A rejected run of bytes; `raw` is at most 48 bytes of it, for an escaped log line."""

    kind: ErrorKind
    detail: str
    raw: bytes = b""


def _check(device: str, type_: FrameType, boot: str, seq: int, args: tuple[str, ...]) -> str:
    if not _ID.fullmatch(device):
        return "bad device id"
    if not _BOOT.fullmatch(boot):
        return "bad boot id (8 upper-case hex digits)"
    if not 0 <= seq < SEQ_MODULO:
        return "seq out of range"
    patterns = _ARGS[type_]
    optional = 1 if patterns and patterns[-1] is _OPT_ID else 0
    if not len(patterns) - optional <= len(args) <= len(patterns):
        return f"{type_} takes {len(patterns) - optional}..{len(patterns)} fields, got {len(args)}"
    for pattern, value in zip(patterns, args, strict=False):
        if not pattern.fullmatch(value):
            return f"bad {type_} field"
    return ""


def encode(frame: Frame) -> bytes:
    """Return the wire bytes of `frame`, terminated by "\\n"."""
    body = ",".join((frame.device, frame.type.value, frame.boot, str(frame.seq), *frame.args)).encode()
    data = b"$" + body + b"*" + f"{crc16_ccitt_false(body):04X}".encode() + b"\n"
    if len(data) > MAX_FRAME:
        raise ValueError(f"frame is {len(data)} bytes, max {MAX_FRAME}")
    return data


def decode_line(line: bytes) -> Frame | FrameError:
    """Decode one line that starts with "$" and has had its "\\n" removed."""
    sample = line[:48]
    match = _FRAME.fullmatch(line)
    if match is None:
        return FrameError(ErrorKind.SYNTAX, "not $<ascii>*<crc>", sample)
    body, crc_hex = match.group(1), match.group(2)
    if crc16_ccitt_false(body) != int(crc_hex, 16):
        return FrameError(ErrorKind.CRC, "checksum mismatch", sample)
    parts = body.decode("ascii").split(",")
    if len(parts) < 4:
        return FrameError(ErrorKind.FIELDS, "fewer than 4 fields", sample)
    device, type_text, boot, seq_text, *args = parts
    try:
        type_ = FrameType(type_text)
    except ValueError:
        return FrameError(ErrorKind.UNKNOWN_TYPE, "unknown type", sample)
    if not _SEQ.fullmatch(seq_text):
        return FrameError(ErrorKind.FIELDS, "bad seq", sample)
    problem = _check(device, type_, boot, int(seq_text), tuple(args))
    if problem:
        return FrameError(ErrorKind.FIELDS, problem, sample)
    return Frame(device, type_, boot, int(seq_text), tuple(args))


_DELIMS = re.compile(rb"[$\n]")


@dataclass
class FrameDecoder:
    """Streaming decoder: bytes in, frames and errors out, never holding more than MAX_FRAME bytes.

    Bytes outside a frame are counted as noise (CR/LF alone are idle line noise and not counted).
    """

    max_frame: int = MAX_FRAME
    errors: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    _buf: bytearray = field(default_factory=bytearray)  # the frame so far, from "$"; empty = hunting
    _noise: bytearray = field(default_factory=bytearray)  # first bytes of the current noise run
    _noise_len: int = 0
    _skipping: bool = False  # after an overlong frame, drop silently up to the next delimiter

    def discard(self) -> None:
        """Bytes were dropped before reaching us: forget the partial frame, resync on the next
        delimiter (a frame spliced from two halves would most likely fail its CRC, but never risk it)."""
        self._buf.clear()
        self._skipping = True

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Consume `data`; return the frames and errors it completed, in order."""
        out: list[Frame | FrameError] = []
        pos = 0
        while pos < len(data):
            match = _DELIMS.search(data, pos)
            stop = match.start() if match else len(data)
            chunk = data[pos:stop]
            if self._skipping:
                pass
            elif self._buf:
                if len(self._buf) + len(chunk) + (1 if match else 0) > self.max_frame:
                    self._error(
                        out, FrameError(ErrorKind.OVERLONG, "no end within max", bytes(self._buf[:48]))
                    )
                    self._buf.clear()
                    self._skipping = True
                else:
                    self._buf += chunk
            else:
                self._note_noise(chunk)
            if match is None:
                break
            delim = data[stop]
            self._skipping = False
            if delim == START:
                if self._buf:
                    self._error(
                        out, FrameError(ErrorKind.TRUNCATED, "new $ inside frame", bytes(self._buf[:48]))
                    )
                self._flush_noise(out)
                self._buf[:] = b"$"
            elif self._buf:
                result = decode_line(bytes(self._buf))
                self._buf.clear()
                if isinstance(result, Frame):
                    self.frames += 1
                    out.append(result)
                else:
                    self._error(out, result)
            else:
                self._flush_noise(out)
            pos = stop + 1
        return out

    def _note_noise(self, chunk: bytes) -> None:
        chunk = chunk.replace(b"\r", b"")
        if chunk:
            self._noise_len += len(chunk)
            self._noise += chunk[: 48 - len(self._noise)]

    def _flush_noise(self, out: list[Frame | FrameError]) -> None:
        if self._noise_len:
            self._error(
                out,
                FrameError(ErrorKind.NOISE, f"{self._noise_len} bytes outside a frame", bytes(self._noise)),
            )
            self._noise.clear()
            self._noise_len = 0

    def _error(self, out: list[Frame | FrameError], error: FrameError) -> None:
        self.errors[error.kind.value] += 1
        out.append(error)

    @property
    def buffered(self) -> int:
        """Bytes held between calls (for the bounded-buffer tests)."""
        return len(self._buf) + len(self._noise)
