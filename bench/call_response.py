"""A CALL's response on elapsed time (branch callclock, migration 0012): the figures and what they cost.

    python bench/call_response.py [--history 20] [--rounds 2000]

The demo line in a real SQLite file (a temporary dir). Two parts, each in one process:

* figures: a material CALL raised and anchored (the escalation runner's tick, as `serve` does), the
  wall clock stepped +1 h (then, on a second call, -1 h) one minute into two, acknowledged, resolved
  two minutes later. "wall" is what main computes (the stored times' difference: the records with
  their recorded `elapsed_s` left out), "elapsed" what this branch reports;
* cost, alternating, median CPU (`time.process_time_ns`): the andon screen's read of the ended
  andons' figures (`--history` resolved and cancelled calls and stops) with main's query (resolve
  rows of stops only, copied here) and this branch's (`storage/andon_durations.py`); and
  `card_log.chain_hash` for a row without andon facts (every scan's and signal's row) with main's
  function (copied here) and this branch's, which looks for an `elapsed_s` after the facts.

Ratios against the baseline taken in the same run, since the box is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.andon_metrics import material_response
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, enroll, login
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.reports import read_andon_records
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import andon_durations
from kanban_terminal.storage.card_log import _N_ORIGINAL, GENESIS, _fact_text, chain_hash
from kanban_terminal.storage.log_key import LogKey
from tests.support.andon import FakeClock

BADGE, PIN = "E2001", "4711"


def one_call(terminal: Terminal, clock: FakeClock, hours: float) -> str:
    raised = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "MAT", source="keyboard")
    assert raised.andon is not None, raised.message
    EscalationRunner(terminal).tick()
    clock.advance(minutes=1)
    clock.step_wall(hours=hours)
    clock.advance(minutes=1)
    assert svc.acknowledge_andon(terminal, raised.andon.id, "E3001", source="keyboard").ok
    clock.advance(minutes=2)
    assert svc.resolve_andon(terminal, raised.andon.id, "bins brought", source="keyboard", actor="E3001").ok
    return raised.andon.id


def figures(data: Path) -> None:
    print("figures: a material CALL, acknowledged 2 min and resolved 4 min after its raise (monotonic)")
    for hours in (1, -1):
        clock = FakeClock()
        terminal = Terminal.open(
            load_config(demo_config_path()), data / f"f{hours}", clock=clock, monotonic=clock.monotonic
        )
        try:
            andon_id = one_call(terminal, clock, hours)
            records = read_andon_records(terminal, clock.now - timedelta(days=1))
            board = read_board(terminal)
        finally:
            terminal.close()
        wall = material_response([replace(r, acknowledged_s=None, ended_s=None) for r in records])
        now = material_response(records)
        [took] = [v.running(clock.now).total_seconds() for v in board.history if v.id == andon_id]
        [rec] = records
        main_took = max(0.0, (rec.resolved_at - rec.raised_at).total_seconds()) if rec.resolved_at else None
        print(
            f"  step {hours:+d} h: to acknowledge wall {wall.ack_p50_s:.0f} s, "
            f"elapsed {now.ack_p50_s:.0f} s; "
            f"to resolve wall {wall.resolve_p50_s:.0f} s, elapsed {now.resolve_p50_s:.0f} s; "
            f"andon screen 'Took' wall {main_took:.0f} s, elapsed {took:.0f} s"
        )


_MAIN_ENDED = (  # main's storage/andon_downtimes.recorded_raw
    "SELECT andon_id, downtime_s FROM card_log WHERE event = 'andon_resolved' AND downtime_s IS NOT NULL "
    "AND andon_id IN ({marks})"
)


def main_recorded_raw(raw: Any, ids: list[str]) -> dict[str, float]:
    rows = raw.execute(_MAIN_ENDED.format(marks=", ".join("?" * len(ids))), ids).fetchall()
    return {r[0]: float(r[1]) for r in rows}


def main_chain_hash(
    prev: str,
    occurred_at: str,
    recorded_at: str,
    values: Sequence[object],
    *,
    backfilled: bool = False,
    key: LogKey | None = None,
) -> str:
    """main's `storage/card_log.chain_hash` (before 0012), body copied as it is."""
    facts: Sequence[object] = ()
    if len(values) > _N_ORIGINAL:
        facts, values = values[_N_ORIGINAL:], values[:_N_ORIGINAL]
        if backfilled or facts.count(None) == len(facts):
            facts = ()
    parts = [prev, occurred_at, recorded_at]
    parts += ["" if v is None else str(v) for v in values]
    if facts:
        parts.append("v2")
        parts += [_fact_text(v) for v in facts]
    message = "\x1f".join(parts).encode()
    return key.mac(message) if key is not None else hashlib.sha256(message).hexdigest()


def median_ns(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    took: dict[str, list[int]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():  # alternating: the box's load falls on both alike
            start = time.process_time_ns()
            call()
            took[name].append(time.process_time_ns() - start)
    return {name: statistics.median(v) for name, v in took.items()}


def cost(data: Path, history: int, rounds: int) -> None:
    clock = FakeClock()
    terminal = Terminal.open(
        load_config(demo_config_path()), data / "cost", clock=clock, monotonic=clock.monotonic
    )
    try:
        assert enroll(terminal, BADGE, PIN, n=2**10) is None

        def team_lead() -> AuthSession:
            state = login(terminal, BADGE, PIN, source="keyboard")
            assert not isinstance(state, Rejection)
            return AuthSession(state)

        ids = []
        for i in range(history):
            if i % 3 == 2:  # a stop, resolved by the team lead
                out = svc.raise_andon(
                    terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=team_lead()
                )
                assert out.andon is not None, out.message
                EscalationRunner(terminal).tick()
                clock.advance(seconds=30)
                done = svc.resolve_andon(terminal, out.andon.id, "ok", source="keyboard", auth=team_lead())
                assert done.ok, done.message
                ids.append(out.andon.id)
            elif i % 3 == 1:  # a call, cancelled
                out = svc.raise_andon(terminal, AndonKind.CALL, "ST10", "HELP", source="keyboard")
                assert out.andon is not None, out.message
                EscalationRunner(terminal).tick()
                clock.advance(seconds=30)
                assert svc.cancel_andon(terminal, out.andon.id, source="keyboard").ok
                ids.append(out.andon.id)
            else:
                ids.append(one_call(terminal, clock, 0))
        with terminal.db.snapshot() as raw:
            assert len(andon_durations.recorded_raw(raw, ids)) == history
            assert len(main_recorded_raw(raw, ids)) == history // 3
            took = median_ns(
                {
                    "main": lambda: main_recorded_raw(raw, ids),
                    "callclock": lambda: andon_durations.recorded_raw(raw, ids),
                },
                rounds,
            )
        print(f"ended andons' figures for the andon screen ({history} ended, {rounds} rounds, median CPU):")
        print(
            f"  main {took['main'] / 1000:.1f} us, callclock {took['callclock'] / 1000:.1f} us "
            f"({took['callclock'] / took['main']:.2f}x)"
        )
        board = median_ns({"read_board": lambda: read_board(terminal)}, rounds // 4)
        print(f"  whole read_board on this branch: {board['read_board'] / 1000:.0f} us")
    finally:
        terminal.close()
    at = "2026-03-02T06:00:00.000000Z"
    row: list[object] = [
        "bin_empty",
        "B1001Z",
        "ST10-FRAME",
        "full",
        "empty",
        "r-1",
        None,
        "keyboard",
        "",
        None,
    ]
    assert main_chain_hash(GENESIS, at, at, row) == chain_hash(GENESIS, at, at, row)
    took = median_ns(
        {
            "main": lambda: main_chain_hash(GENESIS, at, at, row),
            "callclock": lambda: chain_hash(GENESIS, at, at, row),
        },
        rounds * 5,
    )
    print(f"chain_hash, a row without andon facts ({rounds * 5} rounds, median CPU incl. the timer's own):")
    print(
        f"  main {took['main']:.0f} ns, callclock {took['callclock']:.0f} ns "
        f"({took['callclock'] / took['main']:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures(Path(tmp))
        cost(Path(tmp), args.history, args.rounds)


if __name__ == "__main__":
    main()
