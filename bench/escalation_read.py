"""What keeping an andon's timer until its end costs the escalation's full read (branch onemono,
issue 19 section of docs/BENCHMARKS.md).

    python bench/escalation_read.py [--closed 3] [--rounds 3000]

The demo line in a real SQLite file (in a temporary dir): `--closed` CALLs raised, resolved and
acknowledged, then one STOP raised and acknowledged and one CALL raised (what a line with an andon
open looks like). In the same process, alternating, median CPU (`time.process_time`) of:

* "before": main's read (the unacknowledged andons and their fired tiers, copied here);
* "after": this branch's `andon_reads.escalation_candidates`, which also hands back every active
  andon (acknowledged ones included) for the runner's timers;
* a whole `EscalationRunner.tick()` with it, for scale.

The read runs only on the runner's full reads with an andon open (none open: a smaller read skips
it), so the difference is paid at most once per 5 s while signals flow. Ratio against "before"
taken in the same run, since the box is shared.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services import andon as svc
from kanban_terminal.services.auth import AuthSession, enroll, login
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_reads
from kanban_terminal.storage.andon_rows import AndonRows
from kanban_terminal.storage.db import Database

LEAD, PIN = "E2001", "4711"


def main_read(db: Database) -> tuple[Any, ...]:
    """The read as it was on main before onemono."""
    with db.reading() as session:
        rows = AndonRows(session)
        andons = rows.unacknowledged()
        return andons, rows.fired_tiers([a.id for a in andons])


def line_with_an_andon_open(terminal: Terminal, closed: int) -> None:
    assert enroll(terminal, LEAD, PIN, n=2**10) is None
    state = login(terminal, LEAD, PIN, source="keyboard")
    assert not isinstance(state, Rejection)
    auth = AuthSession(state)
    for _ in range(closed):
        call = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard").andon
        assert call is not None
        svc.resolve_andon(terminal, call.id, "ok", source="keyboard", auth=auth)
        svc.acknowledge_andon(terminal, call.id, LEAD, source="keyboard")
    stop = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=auth).andon
    assert stop is not None
    svc.acknowledge_andon(terminal, stop.id, LEAD, source="keyboard")
    svc.raise_andon(terminal, AndonKind.CALL, "ST10", "QUAL", source="keyboard")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--closed", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        terminal = Terminal.open(load_config(demo_config_path()), Path(tmp))
        try:
            line_with_an_andon_open(terminal, args.closed)
            runner = EscalationRunner(terminal)
            runner.tick()
            calls: dict[str, Callable[[], object]] = {
                "before (main's read)": lambda: main_read(terminal.db),
                "after (escalation_candidates)": lambda: andon_reads.escalation_candidates(terminal.db),
                "tick, after": runner.tick,
            }
            took: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(args.rounds):
                for name, call in calls.items():
                    start = time.process_time()
                    call()
                    took[name].append((time.process_time() - start) * 1e6)
        finally:
            terminal.close()
    base = statistics.median(took["before (main's read)"])
    print(f"demo line, {args.closed} closed andons, 1 STOP acknowledged + 1 CALL open, {args.rounds} rounds")
    for name, values in took.items():
        median = statistics.median(values)
        print(f"  {name:<32} median {median:7.1f} us  ({median / base:.2f}x before)")


if __name__ == "__main__":
    main()
