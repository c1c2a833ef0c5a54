"""The field types every wire message is made of: strict, printable, bounded.

One definition per kind of field, so the same rule holds in every message and in its published JSON
Schema: an id is 1-64 of `A-Z a-z 0-9 _ . -` (a topic level), free text is printable and short, a
timestamp is ISO 8601 UTC, a count is an integer and never a boolean. Models are strict (no
coercion: `"7"` is not 7, `true` is not 1) and refuse unknown fields.

It must not import storage or services: it describes bytes, it does not act on them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from kanban_terminal.domain.text import is_unsafe_char

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN.removeprefix("^").removesuffix("$"))
MAX_SEQ = 2**53
"""Sequence numbers stay below 2^53, where JSON numbers stop being exact in other languages."""


class Message(BaseModel):
    """Base of every wire message: strict types, unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, use_attribute_docstrings=True)


def _printable(value: str) -> str:
    if any(is_unsafe_char(ch) for ch in value):
        raise PydanticCustomError("unprintable", "control, format or escape characters are not allowed")
    return value


def _utc(value: Any) -> datetime:
    """An ISO 8601 UTC timestamp (`...Z` or `+00:00`) as an aware datetime."""
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp", "must be an ISO 8601 UTC timestamp string")
    # The shape first: `datetime.fromisoformat` ignores a trailing NUL (found by the fuzz).
    if not 20 <= len(value) <= 40 or not _TIMESTAMP.fullmatch(value):
        raise PydanticCustomError("timestamp", "must be an ISO 8601 UTC timestamp")
    try:
        parsed = datetime.fromisoformat(value)  # 3.11 reads a trailing `Z` as UTC itself
    except ValueError:
        raise PydanticCustomError("timestamp", "must be an ISO 8601 UTC timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise PydanticCustomError("timestamp", "must be in UTC (Z or +00:00)")
    return parsed


Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A topic-level id: device, boot, bin, station, reason, terminal, line, loop."""
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
Seq = Annotated[int, Field(ge=0, lt=MAX_SEQ)]
Count = Annotated[int, Field(ge=0, lt=MAX_SEQ)]


def _an_int(value: Any) -> Any:
    # Literal[1] alone takes `true` and `1.0` (equal to 1, same hash): refuse them before the literal check.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "must be the integer 1 (not a boolean, float or string)")
    return value


Version = Annotated[Literal[1], BeforeValidator(_an_int)]
"""The schema version: 1. A receiver refuses versions it does not know."""


Text40 = Annotated[str, StringConstraints(max_length=40), AfterValidator(_printable)]
"""Printable free text (no control, bidi or escape characters), at most 40 characters."""
Text64 = Annotated[str, StringConstraints(max_length=64), AfterValidator(_printable)]
Id64 = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_printable)]
"""A free-form id: 1-64 printable characters."""
Text200 = Annotated[str, StringConstraints(max_length=200), AfterValidator(_printable)]
Text1000 = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_printable)]


TIMESTAMP_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "pattern": TIMESTAMP_PATTERN,
    "minLength": 20,
    "maxLength": 40,
}
Timestamp = Annotated[
    datetime,
    BeforeValidator(_utc),
    WithJsonSchema(TIMESTAMP_SCHEMA),
]
"""ISO 8601 UTC with `Z` or `+00:00`, e.g. `2026-11-23T10:00:00.000Z`."""


def utc_text(at: datetime) -> str:
    """How every timestamp is written: UTC, milliseconds, `Z`."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utc_text(value: str) -> str:
    _utc(value)
    return value


TimestampText = Annotated[
    str,
    AfterValidator(_utc_text),
    WithJsonSchema(TIMESTAMP_SCHEMA),
]
"""A timestamp an outbound message carries as the text its builder wrote (checked, kept as is)."""


def leave_out(schema: dict[str, Any]) -> None:
    """`json_schema_extra` of a field that may be left out but is never null: no `"default": null`."""
    schema.pop("default", None)
