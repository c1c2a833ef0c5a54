"""A group of bin signals must leave exactly the database that the same signals leave one by one.

The group writes through one `ScanStore` whose rows wait in memory and go out as multi-row
statements; one signal at a time writes them at once. Cards that are emptied, delivered and
emptied again inside one group are where the two could differ: the store must read what it has not
written yet, close a request it raised itself, and order its writes so the one-open-request-per-card
index holds.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.signals import BinSignal, SignalApplier
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TABLES = {
    "card": "id",
    "replenishment_request": "id",
    "card_log": "id",
    "loop": "id",
    "inbound_signal": "device, boot, seq",
}


# One card-log key for both terminals: their logs must come out byte for byte the same, hashes too.
_KEY = '{"v": 1, "key": "' + "ab" * 32 + '", "keyed_after_id": 0, "created_at": "2026-01-01T00:00:00+00:00"}'


def _open(home: Path) -> Terminal:
    config, _ = make_config(home, loops=2, cards=3, sensors=6)
    (home / "data").mkdir(mode=0o700, exist_ok=True)
    os.close(os.open(home / "data" / "log-key.json", os.O_WRONLY | os.O_CREAT, 0o600))
    (home / "data" / "log-key.json").write_text(_KEY)
    ids = (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count(1))
    return Terminal.open(config, home / "data", clock=lambda: NOW, new_id=lambda: next(ids))


def _dump(terminal: Terminal) -> dict[str, list[tuple[object, ...]]]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY {by}").fetchall() for t, by in TABLES.items()}
    finally:
        con.close()


def _signals(steps: list[tuple[int, str]]) -> list[BinSignal]:
    return [
        BinSignal(f"s{n}", f"BS{device:05d}", "b1", n, kind, NOW + timedelta(minutes=n))
        for n, (device, kind) in enumerate(steps)
    ]


def _apply_both_ways(steps: list[tuple[int, str]], groups: int) -> tuple[list[object], list[object]]:
    signals = _signals(steps)
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as group_dir:
        alone, grouped = _open(Path(one_dir)), _open(Path(group_dir))
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
            assert _dump(alone) == _dump(grouped)
            assert verify_log(grouped.db).ok
            return outcomes[0], _dump(grouped)["replenishment_request"]
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
