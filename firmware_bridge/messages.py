"""The MQTT messages the bridge writes and reads: device signals out, commands and line state in.

Pure functions over bytes and frames (docs/FIRMWARE_PROTOCOL.md): no client, no thread, no state.
A payload from the broker is untrusted, so every reader here returns a value or the reason it was
refused and never raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from firmware_bridge.device import Lights, lights_for_line_state
from firmware_bridge.framing import Frame, FrameType
from kanban_terminal.domain.text import escape_external

MAX_PAYLOAD = 4096  # bytes; a real command is < 200, and json.loads of a deep nest can blow the stack
_LAMPS = frozenset({"on", "off", "blink"})
SIGNAL_TYPES = {
    FrameType.BIN: {"empty": "bin_empty", "full": "bin_full"},
    FrameType.BTN: {"call": "andon_call", "stop": "andon_stop", "cancel": "andon_cancel"},
}


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    """A UTC time with milliseconds, as the bridge's messages carry it."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def signal_payload(frame: Frame, at: datetime) -> dict[str, object]:
    """The device signal message for an accepted BIN or BTN frame (docs/FIRMWARE_PROTOCOL.md)."""
    kind, *rest = frame.args if frame.type is FrameType.BTN else (frame.args[1], frame.args[0])
    payload: dict[str, object] = {
        "v": 1,
        "id": f"{frame.device}:{frame.boot}:{frame.seq}",
        "device": frame.device,
        "boot": frame.boot,
        "seq": frame.seq,
        "type": SIGNAL_TYPES[frame.type][kind],
    }
    if frame.type is FrameType.BIN:
        payload["bin"] = rest[0]
    else:
        payload["station"] = rest[0]
        if len(rest) > 1 and rest[1]:
            payload["reason"] = rest[1]
    payload["at"] = iso(at)
    return payload


def parse_command(payload: bytes) -> Lights | bool | str:
    """A device command message: Lights for "light", a bool for "buzzer", else an error string."""
    if len(payload) > MAX_PAYLOAD:
        return "payload too large"
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(data, dict) or data.get("v") != 1:
        return "not an object with v=1"
    if data.get("type") == "light":
        lamps = {name: data.get(name, "off") for name in ("red", "amber", "green")}
        if not all(isinstance(v, str) and v in _LAMPS for v in lamps.values()):
            return "lamps must be on|off|blink"
        return Lights(**lamps)
    if data.get("type") == "buzzer" and isinstance(data.get("on"), bool):
        return bool(data["on"])
    return "type must be light or buzzer(on: bool)"


def parse_line_state(payload: bytes) -> Lights | str:
    """The lights for a line_state message, else an error string."""
    if len(payload) > MAX_PAYLOAD:
        return "payload too large"
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("state"), str):
        return "not an object with v=1 and a state"
    lights = lights_for_line_state(data["state"])
    return lights if lights is not None else f"unknown line state {escape_external(data['state'], 40)!r}"
