"""Multi-row statements come in a few fixed sizes (storage/batches.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kanban_terminal.storage import batches


@given(st.integers(0, 2_000))
def test_chunks_keep_every_row_in_order_in_a_few_sizes(n: int) -> None:
    rows = list(range(n))
    pieces = list(batches.chunks(rows))
    assert [r for piece in pieces for r in piece] == rows
    assert {len(p) for p in pieces} <= {1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128}


def test_groups_of_any_size_need_at_most_twelve_statement_texts() -> None:
    sizes = {len(p) for n in range(1, 600) for p in batches.chunks(list(range(n)))}
    assert len(sizes) == 12


def test_a_few_rows_go_in_one_statement() -> None:
    # A raise (2 log rows) and the PUBACK mark riding with it (1 row): one INSERT, not 2 + 1.
    assert [len(p) for p in batches.chunks(list(range(3)))] == [3]
    assert [len(p) for p in batches.chunks(list(range(8)))] == [8]
    assert [len(p) for p in batches.chunks(list(range(139)))] == [128, 8, 3]


def test_values_flattens_the_rows_of_one_width() -> None:
    assert batches.values([(1, "a"), (2, "b")]) == ("(?, ?), (?, ?)", [1, "a", 2, "b"])


def test_one_row_and_no_rows_take_the_short_road_to_the_same_answer() -> None:
    assert batches.values([(1, "a")]) == ("(?, ?)", [1, "a"])
    assert list(batches.chunks([])) == []
    assert [list(p) for p in batches.chunks([7])] == [[7]]
