"""A PUBACK mark riding in a signal group's unit of work, and the loop sequence numbers a group takes.

The mark reads the acknowledged requests and their cards without flushing the group's buffered rows
first, unless those rows touch them (storage/outbox.py `acknowledged`), and the first raise of a loop
advances its stored sequence number itself (storage/scan_repo.py `take_loop_seq`). Both save
statements a one-signal group (issue 19); neither may change what is stored: a group with its mark
must leave exactly the database a group and then a mark in a unit of its own leave.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.outbox import mark_acknowledged
from kanban_terminal.services.signals import SignalApplier, SignalResult
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.unit_of_work import UnitOfWork
from tests.support.twin_terminals import NOW, bin_signals, dump, open_twin


def _raised(results: list[SignalResult]) -> list[str]:
    return [
        r.outcome.request_id
        for r in results
        if r.outcome and r.outcome.kind.value == "request_raised" and r.outcome.request_id
    ]


step = st.tuples(st.integers(1, 6), st.sampled_from(["empty", "full"]))


@given(
    st.lists(step, min_size=1, max_size=8),
    st.lists(step, min_size=1, max_size=6),
    st.lists(st.integers(0, 7), max_size=4),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_mark_riding_in_a_group_stores_what_a_mark_after_the_group_stores(
    before: list[tuple[int, str]], group: list[tuple[int, str]], picks: list[int]
) -> None:
    # The group may deliver (full) a card whose request is being marked: then the mark must see the
    # group's buffered writes (flush first); otherwise it reads the database as it is.
    with tempfile.TemporaryDirectory() as riding_dir, tempfile.TemporaryDirectory() as after_dir:
        riding, after = open_twin(Path(riding_dir)), open_twin(Path(after_dir))
        try:
            raised = []
            for terminal in (riding, after):
                raised = _raised(SignalApplier(terminal).apply(bin_signals(before, 0)))
            acked = [raised[i % len(raised)] for i in picks] if raised else []
            moved: list[list[str]] = []

            def mark(uow: UnitOfWork, _results: list[SignalResult]) -> None:
                if acked:
                    moved.append(mark_acknowledged(uow, acked, NOW))

            SignalApplier(riding).apply(bin_signals(group, 100), mark)
            SignalApplier(after).apply(bin_signals(group, 100))
            with after.db.unit_of_work() as uow:
                mark(uow, [])
            if acked:
                assert moved[0] == moved[1]
            assert dump(riding) == dump(after)
            assert verify_log(riding.db).ok
        finally:
            riding.close()
            after.close()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    t = open_twin(tmp_path)
    yield t
    t.close()


def _traced(terminal: Terminal) -> list[str]:
    """Every statement on the inbound worker's held connection from now on."""
    statements: list[str] = []
    held = terminal.db._held  # the connection `unit_of_work(held=True)` keeps (db.py)
    assert held is not None
    held.connection.driver_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
    return statements


def test_a_one_signal_group_with_its_mark_writes_the_log_once_and_reads_its_tail_once(
    terminal: Terminal,
) -> None:
    applier = SignalApplier(terminal)
    first = _raised(applier.apply(bin_signals([(1, "empty")], 0)))
    statements = _traced(terminal)

    def mark(uow: UnitOfWork, _results: list[SignalResult]) -> None:
        mark_acknowledged(uow, first, NOW)

    results = applier.apply(bin_signals([(2, "empty")], 1), mark)
    assert _raised(results)
    # Before: the mark flushed the group's rows and read the tail again: 18 statements, two log
    # INSERTs and two tail reads; and the loop's seq was read, then written at the flush.
    assert sum(s.startswith("INSERT INTO card_log") for s in statements) == 1, statements
    assert sum(s.startswith("SELECT hash FROM card_log") for s in statements) == 1, statements
    assert sum(s.startswith(("SELECT l.next_seq", "UPDATE loop")) for s in statements) == 1, statements
    events = (
        sqlite3.connect(terminal.db.path)
        .execute("SELECT event, card_id, from_state, to_state FROM card_log ORDER BY id DESC LIMIT 3")
        .fetchall()
    )
    assert events == [
        ("request_sent", "C00001", "queued", "sent"),
        ("request_raised", "C00002", "empty", "queued"),
        ("bin_empty", "C00002", "in_use", "empty"),
    ]
    assert verify_log(terminal.db).ok


def _next_seq(terminal: Terminal, loop: str) -> int:
    con = sqlite3.connect(terminal.db.path)
    try:
        return int(con.execute("SELECT next_seq FROM loop WHERE id = ?", (loop,)).fetchone()[0])
    finally:
        con.close()


def test_raises_of_one_loop_in_a_group_take_consecutive_numbers_and_a_rollback_gives_them_back(
    terminal: Terminal,
) -> None:
    applier = SignalApplier(terminal)
    loop = terminal.card_loops["C00001"].id
    start = _next_seq(terminal, loop)
    applier.apply(bin_signals([(1, "empty"), (2, "empty"), (3, "empty")], 0))
    seqs = (
        sqlite3.connect(terminal.db.path)
        .execute("SELECT loop_seq FROM replenishment_request WHERE loop_id = ? ORDER BY loop_seq", (loop,))
        .fetchall()
    )
    assert [s for (s,) in seqs] == [start, start + 1, start + 2]
    assert _next_seq(terminal, loop) == start + 3

    def fail(_uow: UnitOfWork, _r: list[SignalResult]) -> None:
        raise sqlite3.OperationalError("disk I/O error")  # after the raise has taken its number

    applier.apply(bin_signals([(1, "full")], 10))
    with pytest.raises(sqlite3.OperationalError):
        applier.apply(bin_signals([(1, "empty")], 20), fail)
    assert _next_seq(terminal, loop) == start + 3
    applier.apply(bin_signals([(1, "empty")], 20))
    assert _next_seq(terminal, loop) == start + 4
    assert verify_log(terminal.db).ok
