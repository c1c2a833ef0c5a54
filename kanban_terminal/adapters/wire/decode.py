"""Bytes from the broker -> a domain value or a reasoned `Refusal`, in one call that never raises.

The inbound worker's single entry is `InboundDecoder.decode(topic, payload, now)`: it knows the
line's topics, parses the payload as one JSON object (size-capped first; `RecursionError` on
`'[' * 100000`, `ValueError` on a 5,000-digit number, invalid UTF-8, NaN and duplicate keys all
become reasons, reliability.md 7.2), picks the model by topic and `type`, validates it against the
terminal's configuration, and hands back a `BinSignal`, `AndonSignal` or `UpstreamStatus`. Anything
else is a `Refusal` carrying its door, the escaped payload and the reason, for `rejected_input`.

It must not store, log or publish: keeping a refusal is the caller's job, in its own transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from kanban_terminal.adapters.wire.fields import Message
from kanban_terminal.adapters.wire.inbound import (
    AndonSignalMessage,
    BinSignalMessage,
    UpstreamStatusMessage,
    WireContext,
)
from kanban_terminal.config import TerminalConfig
from kanban_terminal.config_bins import BinIndex
from kanban_terminal.domain.inbound import AndonSignal, BinSignal, Refusal, UpstreamStatus
from kanban_terminal.domain.text import escape_bytes, escape_external
from kanban_terminal.topics import LineTopics

MAX_SIGNAL_BYTES = 1024
"""A real signal is ~200 bytes; anything far bigger is refused before it is parsed."""
MAX_STATUS_BYTES = 2048
MAX_REQUEST_BYTES = 4096
SHOWN_BYTES = 300
"""How much of a refused payload `rejected_input` keeps (escaped): enough to see what it was."""

M = TypeVar("M", bound=Message)
Inbound = BinSignal | AndonSignal | UpstreamStatus


class _Reject(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _Reject("duplicate key in JSON object")
    return data


def _no_constants(name: str) -> Any:
    raise _Reject(f"{name} is not allowed")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
"""Made once: `json.loads` with hooks builds a decoder and its scanner every call, 42.1k against
22.4k instructions to parse a bin signal (callgrind, 10,000 parses; issue 19). Shared by threads
as `json.loads`'s own default decoder is."""


def parse_json_object(payload: bytes, max_bytes: int) -> dict[str, Any] | str:
    """Parse `payload` as one JSON object, or return the reason it is refused. Never raises."""
    if len(payload) > max_bytes:
        return f"payload of {len(payload)} bytes exceeds {max_bytes}"
    try:
        text = payload.decode("utf-8")
        data = _DECODER.decode(text)
    except _Reject as exc:
        return str(exc)
    except UnicodeDecodeError:
        return "payload is not valid UTF-8"
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError as exc:  # JSONDecodeError, and int() refusing a 5,000-digit number
        return f"not valid JSON: {escape_external(str(exc), 80)}"
    except Exception as exc:  # defensive: a parser surprise must never reach the network thread
        return f"unparseable payload ({type(exc).__name__})"
    if not isinstance(data, dict):
        return "payload is not a JSON object"
    return data


def reason_of(error: ValidationError) -> str:
    """The first problem of a validation error in words for the floor (escaped, one line)."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        message = f"unknown field {where}"
    elif first["type"] == "missing":
        message = f"missing field {where}"
    else:
        message = f"{where}: {first['msg']}" if where else first["msg"]
    more = error.error_count() - 1
    return escape_external(message, 160) + (f" (+{more} more)" if more else "")


def validate(model: type[M], payload: bytes, max_bytes: int, context: WireContext | None = None) -> M | str:
    """Parse and validate one message of `model`, or return why it is refused. Never raises."""
    data = parse_json_object(payload, max_bytes)
    if isinstance(data, str):
        return data
    return validate_object(model, data, context)


def validate_object(model: type[M], data: dict[str, Any], context: WireContext | None = None) -> M | str:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        return reason_of(exc)
    except Exception as exc:  # defensive, as above
        return f"invalid message ({type(exc).__name__})"


def bin_signal(m: BinSignalMessage) -> BinSignal:
    return BinSignal(m.id, m.device, m.boot, m.seq, m.type.removeprefix("bin_"), m.at, m.bin, m.short or 0)


def andon_signal(m: AndonSignalMessage) -> AndonSignal:
    return AndonSignal(m.id, m.device, m.boot, m.seq, m.type, m.station, m.reason or "", m.at)


def upstream_status(m: UpstreamStatusMessage) -> UpstreamStatus:
    return UpstreamStatus(m.id, m.request_id, m.status, m.at, m.eta, m.reason or "", m.by or "")


def device_of(topic: str) -> str | None:
    """The `{device}` level of a `.../device/{device}/signal` topic."""
    parts = topic.rsplit("/", 3)  # the last three levels are all it reads (not a list of every level)
    if len(parts) >= 3 and parts[-1] == "signal" and parts[-3] == "device":
        return parts[-2]
    return None


class InboundDecoder:
    """Decodes everything the terminal subscribes to, judged against one terminal's configuration."""

    def __init__(self, config: TerminalConfig, topics: LineTopics, bins: BinIndex | None = None):
        """`bins`: the config's `BinIndex`, when the caller shares one with its signal applier."""
        self.context = WireContext.of(config, bins)
        self.status_topic = topics.status

    def decode(self, topic: str, payload: bytes, now: datetime) -> Inbound | Refusal:
        """One inbound message as a domain value, or its refusal. Never raises."""
        if topic == self.status_topic:
            status = validate(UpstreamStatusMessage, payload, MAX_STATUS_BYTES)
            if isinstance(status, str):
                return refusal("mqtt:status", payload, status)
            return upstream_status(status)
        device = device_of(topic)
        if device is None:
            return refusal(f"mqtt:{topic}", payload, "not a signal topic")
        data = parse_json_object(payload, MAX_SIGNAL_BYTES)
        if isinstance(data, str):
            return refusal(f"mqtt:device/{device}", payload, data, device)
        context = self.context.for_message(now, device)
        kind = data.get("type")
        # Andon buttons share the device topic with bin sensors; `type` says which message it is.
        if isinstance(kind, str) and kind.startswith("andon_"):
            andon = validate_object(AndonSignalMessage, data, context)
            if isinstance(andon, str):
                return refusal(f"mqtt:device/{device}", payload, andon, device)
            return andon_signal(andon)
        signal = validate_object(BinSignalMessage, data, context)
        if isinstance(signal, str):
            return refusal(f"mqtt:device/{device}", payload, signal, device)
        return bin_signal(signal)


def refusal(door: str, payload: bytes, reason: str, device: str = "?") -> Refusal:
    return Refusal(
        escape_external(door, 120), escape_bytes(payload, SHOWN_BYTES), reason, escape_external(device, 64)
    )
