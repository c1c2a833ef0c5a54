"""A group of bin signals must leave exactly the database that the same signals leave one by one.

The group writes through one `ScanStore` whose rows wait in memory and go out as multi-row
statements; one signal at a time writes them at once. Cards that are emptied, delivered and
emptied again inside one group are where the two could differ: the store must read what it has not
written yet, close a request it raised itself, and order its writes so the one-open-request-per-card
index holds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.signals import SignalApplier
from tests.support.twin_terminals import bin_signals, dump, open_twin


def _apply_both_ways(steps: list[tuple[int, str]], groups: int) -> tuple[list[object], list[object]]:
    signals = bin_signals(steps)
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as group_dir:
        alone, grouped = open_twin(Path(one_dir)), open_twin(Path(group_dir))
        try:
            alone_results = [r for s in signals for r in SignalApplier(alone).apply([s])]
            applier = SignalApplier(grouped)
            size = max(1, -(-len(signals) // groups))
            chunks = [signals[start : start + size] for start in range(0, len(signals), size)]
            group_results = [r for chunk in chunks for r in applier.apply(chunk)]
            outcomes = (
                [(r.outcome.kind, r.outcome.request_id) if r.outcome else None for r in alone_results],
                [(r.outcome.kind, r.outcome.request_id) if r.outcome else None for r in group_results],
            )
            assert outcomes[0] == outcomes[1]
            assert dump(alone) == dump(grouped)
            assert verify_log(grouped.db).ok
            return outcomes[0], dump(grouped)["replenishment_request"]
        finally:
            alone.close()
            grouped.close()


step = st.tuples(st.integers(1, 3), st.sampled_from(["empty", "full"]))


@given(st.lists(step, min_size=1, max_size=12), st.integers(1, 3))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_group_writes_what_the_same_signals_write_one_by_one(
    steps: list[tuple[int, str]], groups: int
) -> None:
    _apply_both_ways(steps, groups)


def test_a_card_emptied_delivered_and_emptied_again_in_one_group() -> None:
    outcomes, requests = _apply_both_ways([(1, "empty"), (1, "full"), (1, "empty"), (2, "empty")], groups=1)
    assert [kind for kind, _ in outcomes] == [  # type: ignore[misc]
        OutcomeKind.REQUEST_RAISED,
        OutcomeKind.DELIVERED,
        OutcomeKind.REQUEST_RAISED,
        OutcomeKind.REQUEST_RAISED,
    ]
    columns = [(r[1], r[3], r[11], r[18] is not None, r[19]) for r in requests]  # card, seq, status...
    assert sorted(columns) == [
        ("C00001", 1, "delivered", True, 60.0),  # raised and closed in the group: one minute
        ("C00001", 2, "queued", False, None),
        ("C00002", 3, "queued", False, None),
    ]
