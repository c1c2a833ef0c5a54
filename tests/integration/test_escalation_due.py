"""The escalation tick reads the tables only when something can be due (services/escalation_due.py):
an idle tick reads nothing, and still every tier fires on time, an andon raised by another process
is found, and a wall-clock step is marked at once (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.escalation_due import BUSY_GAP_S, REFRESH_S
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_reads
from tests.support.andon import TEAM_LEAD, FakeClock, open_terminal


def tick_for(runner: EscalationRunner, clock: FakeClock, seconds: int) -> list[int]:
    """One tick a second for `seconds`, as the runtime's timer does; the tiers fired."""
    fired: list[int] = []
    for _ in range(seconds):
        clock.advance(seconds=1)
        fired += [int(e.tier or 0) for e in runner.tick_when_due()]
    return fired


@contextmanager
def settled_runner(tmp_path: Path) -> Iterator[tuple[FakeClock, Terminal, EscalationRunner]]:
    """A terminal and its escalation runner past start-up (the first tick reads, and once more
    after its own write); both closed at the end."""
    clock = FakeClock()
    terminal = open_terminal(tmp_path, clock)
    runner = EscalationRunner(terminal)
    try:
        tick_for(runner, clock, 20)
        yield clock, terminal, runner
    finally:
        runner.close()
        terminal.close()


def escalated(terminal: Terminal) -> list[str]:
    with terminal.db.snapshot() as sql:
        rows = sql.execute("SELECT detail FROM card_log WHERE event = 'andon_escalated' ORDER BY id")
        return [str(r[0]) for r in rows.fetchall()]


def test_idle_ticks_read_nothing_and_every_tier_still_fires_on_time(tmp_path: Path) -> None:
    with settled_runner(tmp_path) as (clock, terminal, runner):
        settled = runner.reads
        assert tick_for(runner, clock, 30) == [] and runner.reads == settled  # idle: nothing read

        assert svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard").ok  # 0, 5, 15 min
        assert tick_for(runner, clock, 1) == [0]  # the bus said so: read at the next tick
        tick_for(runner, clock, 20)
        between = runner.reads
        # Quiet until tier 1 (5 min after the raise): the refresh once a minute (REFRESH_S) and one
        # read after it, for the anchors it saved (a WAL change it cannot tell from another
        # process's), so at most 2 a minute, not the 278 of a read every tick.
        assert tick_for(runner, clock, 5 * 60 - 22) == []
        assert runner.reads - between <= 2 * (5 * 60 // REFRESH_S) + 1
        assert tick_for(runner, clock, 2) == [1]
        assert escalated(terminal) == ["tier 0: team_lead called", "tier 1: supervisor called"]


def test_an_andon_raised_by_another_process_is_found_without_a_bus_event(tmp_path: Path) -> None:
    with settled_runner(tmp_path) as (clock, terminal, runner):
        settled = runner.reads
        other = open_terminal(tmp_path, clock)  # the CLI's `raise-andon` beside a running `serve`
        try:
            assert svc.raise_andon(other, AndonKind.CALL, "ST20", "QUAL", source="cli").ok
        finally:
            other.close()
        # No event reached this process's bus; the WAL file's change is what says "read".
        assert tick_for(runner, clock, int(BUSY_GAP_S) + 1) == [0]
        assert runner.reads <= settled + 2  # the one that fired, and one after its own write


def test_a_wall_clock_step_is_marked_and_read_at_the_next_tick(tmp_path: Path) -> None:
    with settled_runner(tmp_path) as (clock, terminal, runner):
        settled = runner.reads
        clock.step_wall(hours=-1)
        tick_for(runner, clock, 1)
        assert runner.reads == settled + 1
        assert runner.clock_watch.steps == [-3600.0]


def test_a_read_with_no_andon_open_skips_the_andon_tables_until_one_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards moving with no andon open (a line at 5 signals/s) still make the runner read, for the
    material calls; the escalation and supplied-material reads are skipped then, and come back as
    soon as an andon is open, raised by this process or another."""
    calls: list[str] = []
    for name in ("escalation_candidates", "supplied_material_andons"):
        real = getattr(andon_reads, name)
        monkeypatch.setattr(andon_reads, name, lambda db, _n=name, _r=real: calls.append(_n) or _r(db))
    with settled_runner(tmp_path) as (clock, terminal, runner):
        calls.clear()
        read = runner.reads
        runner.tick()  # a full read, as a card event or the WAL's change asks for
        assert runner.reads == read + 1 and calls == []
        other = open_terminal(tmp_path, clock)  # the CLI's `raise-andon` beside a running `serve`
        try:
            raised = svc.raise_andon(other, AndonKind.CALL, "ST20", "QUAL", source="cli")
        finally:
            other.close()
        assert raised.andon is not None
        assert tick_for(runner, clock, int(BUSY_GAP_S) + 1) == [0]
        assert calls[:2] == ["supplied_material_andons", "escalation_candidates"]
        # Closed: the next read still looks (its timer is tidied there), the one after skips again.
        assert svc.acknowledge_andon(terminal, raised.andon.id, TEAM_LEAD, source="keyboard").ok
        assert svc.resolve_andon(terminal, raised.andon.id, "parts found", source="keyboard").ok
        runner.tick()
        assert not runner.timers.running
        calls.clear()
        runner.tick()
        assert calls == []
