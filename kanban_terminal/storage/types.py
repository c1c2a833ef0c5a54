"""Column types: timezone-aware UTC timestamps stored as sortable ISO 8601 text."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import String, TypeDecorator

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@lru_cache(maxsize=1024)
def to_text(value: datetime) -> str:
    """The stored text of an aware datetime, in UTC.

    Cached: a bin signal stores its time and the terminal's "now" seven times over (card log rows,
    request, card), and the conversion was 13 % of the inbound worker's GIL time in a burst (py-spy
    --gil, 2026-12-04). Equal instants in other zones share an entry, and they have the same text.
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime reached storage; the core works in aware UTC")
    utc = value.astimezone(UTC)
    if utc.year >= 1000:
        # The same text as _FORMAT, ~5x cheaper than strftime: a signal stores ~11 timestamps and
        # strftime was 15 % of the inbound worker's CPU in a burst (cProfile, 5,000 signals).
        return f"{utc.replace(tzinfo=None).isoformat(timespec='microseconds')}Z"
    return utc.strftime(_FORMAT)


def from_text(value: str) -> datetime:
    return datetime.fromisoformat(value)  # 3.11 reads the trailing Z as UTC, and much faster than strptime


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes as fixed-width text: readable in the sqlite3 shell, sortable as text."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else to_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_text(value)
