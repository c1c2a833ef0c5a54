"""CPU of the runway job's pass on a large line: the full pass beside a pass over one changed loop (issue 19).

    python bench/runway_tick.py [--loops 200] [--cards 100] [--open 0,1000,3000] [--history 20000]

A line of `--loops` x `--cards` cards (200 x 100 = 20,000, as bench/line_pc.py's burst line) in a
real SQLite file. Before the figures, `--history` bin-empty rows are written older than the runway
window (scan and deliver, the clock moved back: a log that has run for weeks, which a read by loop
would have to walk). Then, for each count of open requests (spread round-robin over the loops, each
a bin-empty row inside the window), in the same process and minutes:

* full, before: `RunwayMonitor.tick()` with the bin-empty read planned as before this branch
  (through ix_card_log_event: every bin-empty row ever logged); what the runtime ran after every
  card change (the baseline; it also pays this branch's window-start lookup, ~0.3 ms);
* full, now: `RunwayMonitor.tick()` as it is (the window through ix_card_log_occurred_at); what
  the runtime runs every `check_seconds`;
* one loop: `RunwayMonitor.tick_loops({one loop})`, what it runs now after a signal on that loop;
* 30 loops: `tick_loops` over 30 loops (what a pass after 2 s of 500 signals/s spread over 30
  loops reads).

CPU is `time.process_time` around the call, median of `--rounds` (after one warm-up each, which also
raises whatever warnings there are, so the timed calls write nothing). The ratio does not depend on
the box's load the way the microseconds do. The query plans of the narrowed reads are printed too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kanban_terminal.services.runway import RunwayMonitor  # noqa: E402
from kanban_terminal.services.scanning import record_scan  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.storage import runway_rows  # noqa: E402
from kanban_terminal.storage.types import to_text  # noqa: E402
from tests.support.andon import FakeClock  # noqa: E402
from tests.support.mqtt_lines import make_config  # noqa: E402


def cpu_us(call: Callable[[], object], rounds: int) -> float:
    call()  # warm-up: caches, and any warning raised now is not in the timed calls
    samples = []
    for _ in range(rounds):
        t0 = time.process_time()
        call()
        samples.append((time.process_time() - t0) * 1e6)
    return statistics.median(samples)


@contextmanager
def main_plan() -> Iterator[None]:
    """The full pass as main ran it before this branch: the window's bin-empty rows read through
    ix_card_log_event (SQLite's pick for `event = ?`), i.e. every bin-empty row ever logged."""
    now = runway_rows._EMPTIES
    runway_rows._EMPTIES = now.replace("+event", "event")
    try:
        yield
    finally:
        runway_rows._EMPTIES = now


def plans(terminal: Terminal, loop_id: str) -> None:
    since = to_text(terminal.clock() - terminal.config.runway.settings().window)
    of, one = runway_rows._OF_LOOPS, (json.dumps([loop_id]),)
    reads = {
        "every loop's bin empties": (runway_rows._EMPTIES, (since,)),
        "one loop's cards in use": (runway_rows._IN_USE.format(of.format("")), one),
        "one loop's bin empties": (runway_rows._EMPTIES_OF.format(of.format("")), (since, *one, 1)),
        "one loop's open requests": (runway_rows._PROMISES.format(of.format("r.")), one),
    }
    with terminal.db.snapshot() as sql:
        for what, (text, args) in reads.items():
            steps = [row[-1] for row in sql.execute(f"EXPLAIN QUERY PLAN {text}", args)]
            print(f"  plan, {what}: {'; '.join(steps)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--open", default="0,1000,3000", help="open requests per round, ascending")
    parser.add_argument("--history", type=int, default=20_000, help="bin-empty rows older than the window")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the warnings the passes raise are not the figures
    start = datetime(2026, 12, 1, 6, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as d:
        cfg, _ = make_config(Path(d), loops=args.loops, cards=args.cards, sensors=0)
        clock = FakeClock(start - timedelta(days=8))  # the cards registered before the history
        terminal = Terminal.open(cfg, Path(d) / "data", clock=clock)
        try:
            cards = [lp.card_id_list() for lp in cfg.loops]
            order = [cards[i % args.loops][i // args.loops] for i in range(args.loops * args.cards)]
            t0 = time.perf_counter()
            for i in range(args.history):  # the week before the window: empty, then delivered
                clock.now = start - timedelta(days=7) + timedelta(days=6) * i / args.history
                card = order[i % len(order)]
                record_scan(terminal, card, source="keyboard")
                clock.now += timedelta(seconds=30)
                assert record_scan(terminal, card, source="keyboard", confirmed=True).accepted
            clock.now = start
            print(
                f"{args.loops} loops x {args.cards} cards, {args.history} old bin-empty rows "
                f"(written in {time.perf_counter() - t0:.0f} s); CPU a pass, median of {args.rounds}, "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            print(
                f"{'open requests':>14}{'full, before':>14}{'full, now':>11}{'one loop':>10}{'30 loops':>10}"
                f"{'one / full before':>19}{'one / full now':>16}{'30 / full now':>14}   (us of CPU a pass)"
            )
            opened = 0
            monitor = RunwayMonitor(terminal)
            changed = cfg.loops[0].id
            some = {lp.id for lp in cfg.loops[:30]}
            for target in (int(x) for x in args.open.split(",")):
                for card in order[opened:target]:
                    clock.now += timedelta(milliseconds=500)
                    record_scan(terminal, card, source="keyboard")
                opened = max(opened, target)
                with main_plan():
                    before = cpu_us(monitor.tick, args.rounds)
                full = cpu_us(monitor.tick, args.rounds)
                one = cpu_us(lambda: monitor.tick_loops({changed}), args.rounds)
                thirty = cpu_us(lambda: monitor.tick_loops(some), args.rounds)
                print(
                    f"{opened:>14,}{before:>14,.0f}{full:>11,.0f}{one:>10,.0f}{thirty:>10,.0f}"
                    f"{one / before:>19.3f}{one / full:>16.3f}{thirty / full:>14.3f}"
                )
            plans(terminal, changed)
        finally:
            terminal.close()
    print("(CPU on a shared 2-core box: the ratio is the figure; the microseconds move with its load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
