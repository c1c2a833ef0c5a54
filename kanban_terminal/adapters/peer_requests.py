"""What the supermarket peer (adapters/upstream.py) accepts on the requests topic: a request, or a
cancel of one, validated against the wire schema.

Split from adapters/upstream.py, which runs the peer; this only parses. It must not raise on bad
input (a refusal is a reason string the peer logs and keeps) and does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kanban_terminal.adapters.wire import MAX_REQUEST_BYTES, RequestCancelMessage, RequestMessage
from kanban_terminal.adapters.wire.decode import parse_json_object, validate_object


@dataclass(frozen=True)
class Request:
    id: str
    line: str
    loop: str
    loop_seq: int
    card: str


def parse_request(payload: bytes) -> Request | str:
    """Validate a request against the wire schema; return it or the reason. Never raises."""
    data = parse_json_object(payload, MAX_REQUEST_BYTES)
    return data if isinstance(data, str) else _request_of(data)


def _request_of(data: dict[str, Any]) -> Request | str:
    message = validate_object(RequestMessage, data)
    if isinstance(message, str):
        return message
    return Request(message.id, message.line, message.loop, message.loop_seq, message.card)


def parse_requests_topic(payload: bytes) -> tuple[Request, int] | str:
    """A message of the requests topic, parsed once: (the request, 0; or for a cancel of it, a
    re-route, `type` = cancel, the cancel's attempt, 1 or more), or the reason it is refused."""
    data = parse_json_object(payload, MAX_REQUEST_BYTES)
    if isinstance(data, str):
        return data
    if data.get("type") != "cancel":
        request = _request_of(data)
        return request if isinstance(request, str) else (request, 0)
    message = validate_object(RequestCancelMessage, data)
    if isinstance(message, str):
        return message
    return Request(message.id, message.line, message.loop, 0, message.card), message.attempt
