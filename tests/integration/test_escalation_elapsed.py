"""An escalation row records the andon's time since its raise, like the acknowledge and the end do.

A material CALL (reason MAT: tiers at 0, 5 and 15 min in the demo config) is raised; the runner's
tick fires tier 0 and anchors it (`andon:<id>`), as `serve` does every second; 5 minutes pass on the
monotonic clock with a +1 h (or -1 h) wall-clock step in them, and the next tick fires tier 1. Its
row said only `occurred_at`, 1 h 05 min (or -55 min) after the raise; now its `elapsed_s` says 300,
the published `escalated` message carries `elapsed_s` 300, the CSV export (the CLI in its own
terminal) has the column filled, and the chain verifies: the figure is hashed (v3) only on rows
that carry it, so every escalation row written before keeps its hash. Metrics show no figure of
escalations (they fold acknowledge and end only), so none changes there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.services.andon import AndonChanged
from kanban_terminal.services.andon_publishing import andon_event_payload
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.log_query import read_csv
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.log_reads import verify_chain_of
from kanban_terminal.storage.tables import CardLogRow
from tests.integration.test_call_response_steps import cli, clock, raise_call, terminal
from tests.support.andon import FakeClock

__all__ = ["clock", "terminal"]  # the fixtures, shared with the acknowledge and end tests


def escalations(terminal: Terminal, andon_id: str) -> list[tuple[str, float | None]]:
    with terminal.db.reading() as s:
        rows = s.exec(
            select(CardLogRow.detail, CardLogRow.elapsed_s)
            .where(CardLogRow.andon_id == andon_id, CardLogRow.event == "andon_escalated")
            .order_by(col(CardLogRow.id))
        ).all()
    return [(detail, elapsed) for detail, elapsed in rows]


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_a_tier_fired_after_a_step_records_its_elapsed_time(
    terminal: Terminal, clock: FakeClock, hours: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[object] = []
    terminal.bus.subscribe(seen.append)
    andon_id = raise_call(terminal)
    runner = EscalationRunner(terminal)
    runner.tick()  # tier 0, and the anchor
    clock.advance(minutes=2)
    clock.step_wall(hours=hours)
    clock.advance(minutes=3)
    runner.tick()  # tier 1: 5 minutes on the monotonic clock
    runner.tick()  # nothing more is due
    assert escalations(terminal, andon_id) == [
        ("tier 0: team_lead called", 0.0),
        ("tier 1: supervisor called", 300.0),
    ]
    published = [andon_event_payload(terminal, e) for e in seen if isinstance(e, AndonChanged)]
    assert [(p["action"], p.get("tier"), p.get("elapsed_s")) for p in published] == [
        ("raised", None, None),
        ("escalated", 0, 0),
        ("escalated", 1, 300),
    ]
    assert verify_chain_of(terminal.db).ok

    data_dir = terminal.db.path.parent
    out = tmp_path / "log.csv"
    cli(["export", "--event", "andon", "--out", str(out)], data_dir, capsys)
    with out.open(encoding="utf-8") as f:
        exported = {(r["event"], r["elapsed_s"]) for r in read_csv(f) if r["andon_id"] == andon_id}
    assert exported == {("andon_raised", None), ("andon_escalated", "0.0"), ("andon_escalated", "300.0")}
