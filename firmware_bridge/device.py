"""What the bridge remembers about each device: boot, sequence, liveness and its rate budget. Pure.

Dedupe is by (device, boot, seq), never by seq alone: a device that reboots starts again at seq 0
and a bridge that only kept "last seq" would drop everything after the reboot (reliability.md
finding 10, goal R8). Old boot ids are remembered so a replayed frame from before a reboot is
refused. Time comes in as a monotonic `now` argument; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum

from firmware_bridge.framing import SEQ_MODULO, Frame, FrameType

_OLD_BOOTS = 8  # boots remembered per device for replay refusal; reboots are rare, 8 covers a bad day


class Verdict(StrEnum):
    """What to do with a frame that passed framing."""

    ACCEPT = "accept"
    DUPLICATE = "duplicate"  # same boot, seq not newer: a retransmission, or a replay within a boot
    OLD_BOOT = "old_boot"  # a frame from a boot the device has since left
    RATE_LIMITED = "rate_limited"
    WRONG_DEVICE = "wrong_device"  # the id in the frame is not the device configured on that port
    WRONG_DIRECTION = "wrong_direction"  # a host -> device type arriving from a device


_DEVICE_TYPES = frozenset({FrameType.HELLO, FrameType.HB, FrameType.BIN, FrameType.BTN})


def seq_newer(seq: int, last: int) -> bool:
    """True if `seq` is after `last` in 16-bit serial number arithmetic (RFC 1982), so seq may wrap."""
    return 0 < (seq - last) % SEQ_MODULO < SEQ_MODULO // 2


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one frame costs one token."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float | None = None

    def take(self, now: float) -> bool:
        if self.stamp is None:
            self.tokens = self.burst
        else:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def take_up_to(self, amount: int, now: float) -> int:
        """Take as many of `amount` tokens as there are (one per byte for a byte budget)."""
        if self.stamp is None:
            self.tokens = self.burst
        else:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        granted = min(amount, int(self.tokens))
        self.tokens -= granted
        return granted


@dataclass
class DeviceState:
    """One configured device, as seen from its serial port."""

    device_id: str
    heartbeat_timeout: float
    bucket: TokenBucket
    boot: str | None = None
    last_seq: int | None = None
    last_seen: float | None = None
    online: bool = False
    firmware: str = ""
    old_boots: deque[str] = field(default_factory=lambda: deque(maxlen=_OLD_BOOTS))
    counts: Counter[str] = field(default_factory=Counter)

    def judge(self, frame: Frame, now: float) -> Verdict:
        """Decide on `frame` and update the state; every verdict is counted under its name.

        A frame from an unknown boot id is a new boot even without a HELLO first: the bridge may
        have restarted while the device kept running, and its events must not be lost for that.
        Rate limiting comes first so a flooding device pays for its garbage too.
        """
        verdict = self._verdict(frame, now)
        self.counts[verdict.value] += 1
        return verdict

    def _verdict(self, frame: Frame, now: float) -> Verdict:
        if frame.device != self.device_id:
            return Verdict.WRONG_DEVICE
        if frame.type not in _DEVICE_TYPES:
            return Verdict.WRONG_DIRECTION
        if not self.bucket.take(now):
            return Verdict.RATE_LIMITED
        if frame.boot in self.old_boots:
            return Verdict.OLD_BOOT
        if frame.boot != self.boot:
            if self.boot is not None:
                self.old_boots.append(self.boot)
            self.boot, self.last_seq = frame.boot, None
            self.counts["reboots"] += 1
        elif self.last_seq is not None and not seq_newer(frame.seq, self.last_seq):
            return Verdict.DUPLICATE
        elif self.last_seq is not None and frame.seq != (self.last_seq + 1) % SEQ_MODULO:
            self.counts["seq_gaps"] += 1
        self.last_seq = frame.seq
        self.last_seen = now
        if frame.type is FrameType.HELLO:
            self.firmware = frame.args[0]
        return Verdict.ACCEPT

    def mark_online(self) -> bool:
        """Set online; True if this is a change worth publishing."""
        changed = not self.online
        self.online = True
        return changed

    def mark_offline(self) -> bool:
        """Set offline (port lost or heartbeat timeout); True if this is a change worth publishing."""
        changed = self.online
        self.online = False
        return changed

    def timed_out(self, now: float) -> bool:
        """True if the device is online but silent for longer than its heartbeat timeout."""
        return self.online and self.last_seen is not None and now - self.last_seen > self.heartbeat_timeout


@dataclass(frozen=True)
class Lights:
    """What a stack light and its buzzer show; lamp values are the LIGHT frame's on|off|blink."""

    red: str = "off"
    amber: str = "off"
    green: str = "off"
    buzzer: bool = False


def lights_for_line_state(state: str) -> Lights | None:
    """The stack light for a line state; None for a state this bridge does not know.

    An unknown state leaves the lamps as they are: guessing "green" could tell an operator that a
    stopped line runs.
    """
    return {
        "running": Lights(green="on"),
        "call": Lights(amber="blink", green="on"),
        "stopped": Lights(red="on", buzzer=True),
    }.get(state)
