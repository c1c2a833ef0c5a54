"""One declarative wire schema for every MQTT message the terminal receives or sends.

Strict pydantic models (`inbound.py`, `outbound.py`) built from shared field types (`fields.py`):
bool is not an int, text is printable and bounded, unknown fields are refused, and ids, bins,
stations and reasons are checked against the terminal's configuration. `decode.py` is the inbound
worker's single entry (bytes -> domain value or `Refusal`); `encode` writes outbound messages
through the same models. The JSON Schema of each message is published under docs/schema/
(`python -m kanban_terminal.adapters.wire --write docs/schema`), and a test fails when they drift.

It must not store, log or publish anything: it is the edge's dictionary, not a use case.
"""

from kanban_terminal.adapters.wire.decode import (
    MAX_REQUEST_BYTES,
    MAX_SIGNAL_BYTES,
    MAX_STATUS_BYTES,
    InboundDecoder,
    parse_json_object,
    validate,
)
from kanban_terminal.adapters.wire.fields import utc_text
from kanban_terminal.adapters.wire.inbound import (
    AndonSignalMessage,
    BinSignalMessage,
    RequestCancelMessage,
    RequestMessage,
    UpstreamStatusMessage,
    WireContext,
)
from kanban_terminal.adapters.wire.outbound import (
    AndonEventMessage,
    AvailabilityMessage,
    BuzzerCommand,
    HealthMessage,
    LightCommand,
    LineStateMessage,
    LogAnchorMessage,
    encode,
)
from kanban_terminal.adapters.wire.peers import (
    MAX_CLAIM_BYTES,
    MAX_QUERY_BYTES,
    MAX_QUERY_IDS,
    CancelNoticeMessage,
    ClaimMessage,
    StatusQueryMessage,
)

__all__ = [
    "MAX_CLAIM_BYTES",
    "MAX_QUERY_BYTES",
    "MAX_QUERY_IDS",
    "CancelNoticeMessage",
    "ClaimMessage",
    "StatusQueryMessage",
    "MAX_REQUEST_BYTES",
    "MAX_SIGNAL_BYTES",
    "MAX_STATUS_BYTES",
    "AndonEventMessage",
    "AndonSignalMessage",
    "AvailabilityMessage",
    "BinSignalMessage",
    "BuzzerCommand",
    "HealthMessage",
    "InboundDecoder",
    "LightCommand",
    "LineStateMessage",
    "LogAnchorMessage",
    "RequestCancelMessage",
    "RequestMessage",
    "UpstreamStatusMessage",
    "WireContext",
    "encode",
    "parse_json_object",
    "utc_text",
    "validate",
]
