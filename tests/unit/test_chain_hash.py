"""`chain_hash` (stored text, used by the generator and verify-log) must equal `row_hash` (ORM rows,
used by every writer): one differing character and verify-log would call a good log broken."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kanban_terminal.storage.card_log import (
    ELAPSED,
    FACTS,
    GENESIS,
    HASHED_FIELDS,
    ORIGINAL_FIELDS,
    chain_hash,
    row_hash,
)
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.storage.types import to_text

optional_text = st.none() | st.text(max_size=30)


@settings(max_examples=40, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=10**9),
    values=st.fixed_dictionaries(
        {f: optional_text for f in HASHED_FIELDS if f not in ("event", "source", "downtime_s", "elapsed_s")}
        | {
            f: st.none() | st.floats(min_value=0, max_value=1e7) | st.integers(0, 10**6)
            for f in ("downtime_s", "elapsed_s")
        }
    ),
    event=st.text(min_size=1, max_size=20),
    source=st.text(max_size=20),
    detail=st.text(max_size=60),
)
def test_chain_hash_equals_row_hash(
    offset: int, values: dict[str, object], event: str, source: str, detail: str
) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(microseconds=offset * 997)
    fields = {**values, "event": event, "source": source, "detail": detail}
    row = CardLogRow(occurred_at=at, recorded_at=at, **fields)
    stored = [getattr(row, f) for f in HASHED_FIELDS]
    assert chain_hash(GENESIS, to_text(at), to_text(at), stored) == row_hash(GENESIS, row)


def legacy_hash(prev: str, occurred: str, recorded: str, values: list[object]) -> str:
    """The hash as 9c36896 computed it, over the ten original fields."""
    parts = [prev, occurred, recorded] + ["" if v is None else str(v) for v in values]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def test_rows_without_facts_hash_as_before_0006_and_facts_change_the_hash() -> None:
    at = to_text(datetime(2026, 3, 2, 6, tzinfo=UTC))
    original: list[object] = [
        "andon_raised",
        None,
        None,
        None,
        "raised",
        None,
        "E2001",
        "keyboard",
        "x",
        "A1",
    ]
    assert len(original) == len(ORIGINAL_FIELDS)
    old = legacy_hash(GENESIS, at, at, original)
    assert chain_hash(GENESIS, at, at, original) == old
    assert chain_hash(GENESIS, at, at, [*original, None, None, None, None]) == old
    facts: list[object] = ["stop", "QUAL", "ST20", None]
    assert len(facts) == len(FACTS)
    covered = chain_hash(GENESIS, at, at, [*original, *facts])
    assert covered != old
    assert chain_hash(GENESIS, at, at, [*original, *facts], backfilled=True) == old
    # SQLite's REAL column returns 28.0 for an int 28: both must hash alike.
    assert chain_hash(GENESIS, at, at, [*original, "stop", "QUAL", "ST20", 28]) == chain_hash(
        GENESIS, at, at, [*original, "stop", "QUAL", "ST20", 28.0]
    )


def test_rows_without_elapsed_hash_as_before_0012_and_elapsed_is_always_covered() -> None:
    """Migration 0012 added `elapsed_s`: every row written before it (NULL there) keeps its hash, and
    a figure written into it changes the hash, backfilled row or not (0012 backfills nothing)."""
    at = to_text(datetime(2026, 3, 2, 6, tzinfo=UTC))
    original: list[object] = ["andon_acknowledged", None, None, "raised", "acknowledged", None, "E2001",
                              "keyboard", "", "A1"]  # fmt: skip
    facts: list[object] = ["call", "MAT", "ST20", None]
    assert len(ELAPSED) == 1 and (*ORIGINAL_FIELDS, *FACTS, *ELAPSED) == HASHED_FIELDS
    before_0012 = chain_hash(GENESIS, at, at, [*original, *facts])
    assert chain_hash(GENESIS, at, at, [*original, *facts, None]) == before_0012
    with_elapsed = chain_hash(GENESIS, at, at, [*original, *facts, 120.0])
    assert with_elapsed != before_0012
    assert with_elapsed != chain_hash(GENESIS, at, at, [*original, *facts, 3720.0])
    assert with_elapsed == chain_hash(GENESIS, at, at, [*original, *facts, 120])  # REAL gives 120.0 back
    legacy = legacy_hash(GENESIS, at, at, original)
    assert chain_hash(GENESIS, at, at, [*original, *facts, None], backfilled=True) == legacy
    assert chain_hash(GENESIS, at, at, [*original, *facts, 120.0], backfilled=True) != legacy
