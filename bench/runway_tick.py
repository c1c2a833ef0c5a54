"""CPU of the runway job's pass on a large line as its file ages: the full pass beside passes over some
changed loops, over 0, 60,000 and 200,000 closed requests (issue 19, branch runwayhist).

    python bench/runway_tick.py [--loops 200] [--cards 100] [--open 3000] [--closed 0,60000,200000]
                                [--some 1,30,100,200] [--history 0]

A line of `--loops` x `--cards` cards (200 x 100 = 20,000, as bench/line_pc.py's burst line) in a
real SQLite file, `--open` requests open (scanned empty, spread round-robin over the loops, each a
bin-empty row inside the window). For each count of closed requests (ascending), the delivered
requests of the weeks before the window are written first: `--history` of them really (scanned
empty and delivered, with their chained log rows: a log that has run for weeks), the rest as rows
(a delivered request's columns, `publish_state` done, round-robin over the cards, raised in the
90 days before the window; no log rows: neither read walks the log before the window, runwayinc).
Then, in the same process and minutes:

* full: `RunwayMonitor.tick()`, what the runtime runs every `check_seconds`;
* N loops: `RunwayMonitor.tick_loops(N loops)`, what it runs after cards of N loops changed (1: a
  signal; 30: 2 s of 500 signals/s over 30 loops; all: a pass over every loop, narrowed);

each "before" (the open requests read as main does: by ix_request_loop_raised, each loop's whole
request history, and the whole line's without the card lookup) and "now" (through the loops' cards
and ux_request_open_card). CPU is `time.process_time` around the call, median of `--rounds` (after
one warm-up each, which also raises whatever warnings there are, so the timed calls write nothing).
The ratios do not depend on the box's load the way the microseconds do. The plans of the narrowed
reads are printed too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kanban_terminal.config import TerminalConfig  # noqa: E402
from kanban_terminal.services.runway import RunwayMonitor  # noqa: E402
from kanban_terminal.services.scanning import record_scan  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.storage import runway_rows  # noqa: E402
from kanban_terminal.storage.types import to_text  # noqa: E402
from tests.support.andon import FakeClock  # noqa: E402
from tests.support.mqtt_lines import make_config  # noqa: E402

# main's read of the open requests (before this branch), with the request's own loop as the card's:
# main had no notion of strays.
_MAIN = (
    "SELECT r.id, r.loop_id, r.card_id, r.quantity, r.raised_at, r.due_at, r.eta, a.id, r.loop_id "
    "FROM replenishment_request r LEFT JOIN andon a ON a.request_id = r.id WHERE r.closed_at IS NULL"
)


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
    """The open requests read as main read them: some loops' by ix_request_loop_raised."""
    now = runway_rows._promises

    def before(
        sql: sqlite3.Connection, loops: Collection[str] | None, strays: Collection[str] | None
    ) -> Iterator[tuple[Any, ...]]:
        if loops is None:
            return iter(sql.execute(_MAIN))
        return iter(
            sql.execute(
                _MAIN + " AND r.loop_id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(loops)),)
            )
        )

    runway_rows._promises = before
    try:
        yield
    finally:
        runway_rows._promises = now


def write_closed(
    db_path: Path, cfg: TerminalConfig, order: list[str], count: int, first: int, end: datetime
) -> None:
    """`count` delivered requests as rows, raised in the 90 days before `end`, round-robin over the cards."""
    loop_of = {card: lp for lp in cfg.loops for card in lp.card_id_list()}
    rows = []
    for i in range(first, first + count):
        card = order[i % len(order)]
        lp = loop_of[card]
        raised = end - timedelta(days=90) * (1 - i / 250_000)
        rows.append((
            str(uuid.uuid4()), card, lp.id, -i, lp.part, lp.container_quantity, lp.station, lp.point_of_use,
            lp.source, to_text(raised), to_text(raised + timedelta(hours=4)), "delivered", "done", 1,
            to_text(raised + timedelta(hours=3)), 10_800.0,
        ))  # fmt: skip
    with sqlite3.connect(db_path) as sql:
        sql.executemany(
            "INSERT INTO replenishment_request (id, card_id, loop_id, loop_seq, part_number, quantity, "
            "station, point_of_use, source, raised_at, due_at, status, publish_state, publish_count, "
            "closed_at, lead_time_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    sql.close()


def plans(terminal: Terminal, loop_id: str) -> None:
    since = to_text(terminal.clock() - terminal.config.runway.settings().window)
    of, one = runway_rows._OF_LOOPS, (json.dumps([loop_id]),)
    reads = {
        "one loop's cards in use": (runway_rows._IN_USE.format(of.format("")), one),
        "one loop's bin empties": (runway_rows._EMPTIES_OF.format(of.format("")), (since, *one, 1)),
        "one loop's open requests, before": (runway_rows._PROMISES_OF_LOOPS, one),
        "one loop's open requests, now": (runway_rows._PROMISES_OF_CARDS, one * 2),
        "every loop's open requests": (runway_rows._PROMISES.format(""), ()),
    }
    with terminal.db.snapshot() as sql:
        for what, (text, args) in reads.items():
            steps = [row[-1] for row in sql.execute(f"EXPLAIN QUERY PLAN {text}", args)]
            print(f"  plan, {what}: {'; '.join(steps)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--open", type=int, default=3000, help="open requests")
    parser.add_argument("--closed", default="0,60000,200000", help="closed requests per round, ascending")
    parser.add_argument("--some", default="1,30,100,200", help="how many loops the narrowed passes read")
    parser.add_argument(
        "--history", type=int, default=0, help="of the closed requests, how many really scanned"
    )
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the warnings the passes raise are not the figures
    start = datetime(2026, 12, 1, 6, tzinfo=UTC)
    some = [int(x) for x in args.some.split(",")]
    with tempfile.TemporaryDirectory() as d:
        cfg, _ = make_config(Path(d), loops=args.loops, cards=args.cards, sensors=0)
        clock = FakeClock(start - timedelta(days=100))  # the cards registered before the history
        terminal = Terminal.open(cfg, Path(d) / "data", clock=clock)
        try:
            cards = [lp.card_id_list() for lp in cfg.loops]
            order = [cards[i % args.loops][i // args.loops] for i in range(args.loops * args.cards)]
            # The open requests last in the order: the history's cards are delivered, these stay empty.
            opening, history = order[: args.open], order[args.open :] or order
            t0 = time.perf_counter()
            real = 0
            for i in range(args.history):  # the week before the window: empty, then delivered
                clock.now = start - timedelta(days=7) + timedelta(days=6) * i / max(args.history, 1)
                card = history[i % len(history)]
                record_scan(terminal, card, source="keyboard")
                clock.now += timedelta(seconds=30)
                assert record_scan(terminal, card, source="keyboard", confirmed=True).accepted
                real += 1
            clock.now = start
            for card in opening:
                clock.now += timedelta(milliseconds=500)
                record_scan(terminal, card, source="keyboard")
            print(
                f"{args.loops} loops x {args.cards} cards, {args.open:,} requests open, {real:,} of the "
                f"closed really scanned (setup {time.perf_counter() - t0:.0f} s); CPU a pass, us, median of "
                f"{args.rounds}, load average {os.getloadavg()[0]:.1f}"
            )
            head = f"{'closed':>9}{'full, before':>13}{'full, now':>11}"
            for n in some:
                head += f"{f'{n} before':>11}{f'{n} now':>9}{'ratio':>7}"
            print(head + "   (N: a pass over N changed loops; ratio: now / before)")
            monitor = RunwayMonitor(terminal)
            written = real
            db_path = Path(d) / "data" / "terminal.db"
            for closed in (int(x) for x in args.closed.split(",")):
                if closed > written:
                    write_closed(db_path, cfg, history, closed - written, written, start - timedelta(days=8))
                    written = closed
                sets = {n: {lp.id for lp in cfg.loops[:n]} for n in some}

                def narrowed(loops: set[str]) -> Callable[[], object]:
                    return lambda: monitor.tick_loops(loops)

                with main_plan():
                    full_before = cpu_us(monitor.tick, args.rounds)
                    before = {n: cpu_us(narrowed(sets[n]), args.rounds) for n in some}
                full = cpu_us(monitor.tick, args.rounds)
                now = {n: cpu_us(narrowed(sets[n]), args.rounds) for n in some}
                line = f"{written:>9,}{full_before:>13,.0f}{full:>11,.0f}"
                for n in some:
                    line += f"{before[n]:>11,.0f}{now[n]:>9,.0f}{now[n] / before[n]:>7.3f}"
                print(line)
            print("now, a pass over N loops / the full pass now (the last round): " + ", ".join(
                f"{n}: {now[n] / full:.2f}" for n in some
            ))  # fmt: skip
            plans(terminal, cfg.loops[0].id)
        finally:
            terminal.close()
    print("(CPU on a shared 2-core box: the ratios are the figures; the microseconds move with its load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
