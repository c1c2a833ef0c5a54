"""`chain_hash` (stored text, used by the generator and verify-log) must equal `row_hash` (ORM rows,
used by every writer): one differing character and verify-log would call a good log broken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kanban_terminal.storage.card_log import GENESIS, HASHED_FIELDS, chain_hash, row_hash
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.storage.types import to_text

optional_text = st.none() | st.text(max_size=30)


@settings(max_examples=40, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=10**9),
    values=st.fixed_dictionaries({f: optional_text for f in HASHED_FIELDS if f not in ("event", "source")}),
    event=st.text(min_size=1, max_size=20),
    source=st.text(max_size=20),
    detail=st.text(max_size=60),
)
def test_chain_hash_equals_row_hash(
    offset: int, values: dict[str, str | None], event: str, source: str, detail: str
) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(microseconds=offset * 997)
    fields = {**values, "event": event, "source": source, "detail": detail}
    row = CardLogRow(occurred_at=at, recorded_at=at, **fields)
    stored = [getattr(row, f) for f in HASHED_FIELDS]
    assert chain_hash(GENESIS, to_text(at), to_text(at), stored) == row_hash(GENESIS, row)
