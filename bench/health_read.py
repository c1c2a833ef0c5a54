"""CPU of the health message's read on a large line: the card table walk against the log's event index
(issue 19 section of docs/BENCHMARKS.md, branch healthclock).

    python bench/health_read.py [--loops 200] [--cards 100] [--scanned 3000] [--rounds 201]

A line of `--loops` x `--cards` cards (200 x 100 = 20,000, as bench/line_pc.py's burst line) in a
real SQLite file, `--scanned` of them scanned empty through `record_scan` (their request, log and
card rows as a running line writes them), all but `--pending` requests then marked published (a
connected line: the broker acknowledged them). Then, in the same process, alternating call by call so
load bends both alike, the median CPU (`time.process_time`) of:

* before: main's `card_reads.health` (copied here): the pending requests' count and oldest, and
  `max(card.last_scan_at)` over every card's row under the 64-page walk cache;
* now: this branch's `card_reads.health`, the newest scan through `ix_card_log_event`.

Both on one warm pooled reader, as the health thread runs it once a minute. The ratio is the figure
to read on a shared box; the microseconds move with its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from kanban_terminal.services.scanning import record_scan  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.storage import card_reads  # noqa: E402
from kanban_terminal.storage.db import Database  # noqa: E402
from kanban_terminal.storage.page_cache import walk_cache  # noqa: E402
from kanban_terminal.storage.tables import CardRow, RequestRow  # noqa: E402
from kanban_terminal.storage.types import from_text  # noqa: E402
from tests.support.andon import FakeClock  # noqa: E402
from tests.support.mqtt_lines import make_config  # noqa: E402


def main_read(db: Database) -> tuple[Any, ...]:
    """`card_reads.health` as it was on main before healthclock."""
    with db.reading() as session:
        queued, oldest = session.exec(
            select(func.count(), func.min(col(RequestRow.raised_at))).where(
                RequestRow.publish_state == "pending"
            )
        ).one()
        raw = session.connection().connection.driver_connection
        assert raw is not None
        with walk_cache(raw):
            last_scan = session.exec(select(func.max(col(CardRow.last_scan_at)))).one()
    return queued, oldest, last_scan


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--scanned", type=int, default=3000)
    parser.add_argument("--pending", type=int, default=0, help="of the scanned, left unacknowledged")
    parser.add_argument("--rounds", type=int, default=201)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cfg, _ = make_config(Path(d), loops=args.loops, cards=args.cards, sensors=0)
        clock = FakeClock(datetime(2026, 12, 1, 6, tzinfo=UTC))
        terminal = Terminal.open(cfg, Path(d) / "data", clock=clock)
        try:
            cards = [lp.card_id_list() for lp in cfg.loops]
            order = [cards[i % args.loops][i // args.loops] for i in range(args.loops * args.cards)]
            t0 = time.perf_counter()
            for card in order[: args.scanned]:
                clock.now += timedelta(milliseconds=500)
                assert record_scan(terminal, card, source="keyboard").accepted
            setup = time.perf_counter() - t0
            # A connected line: the broker acknowledged all but `--pending` (whose count and oldest
            # both reads take alike, through ix_request_publish_state).
            with terminal.db.write_engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE replenishment_request SET publish_state = 'published' WHERE id NOT IN "
                    "(SELECT id FROM replenishment_request ORDER BY raised_at DESC LIMIT ?)",
                    (args.pending,),
                )
            before, now = main_read(terminal.db), card_reads.health(terminal.db)
            last = from_text(before[2]) if isinstance(before[2], str) else before[2]
            assert (before[0], last) == (now[0], now[2]), (before, now)  # one answer
            calls: dict[str, Callable[[], object]] = {
                "before (main: max(card.last_scan_at))": lambda: main_read(terminal.db),
                "now (log's event index)": lambda: card_reads.health(terminal.db),
            }
            samples: dict[str, list[float]] = {name: [] for name in calls}
            for call in calls.values():
                call()  # warm: the pooled reader and its statement cache
            for _ in range(args.rounds):
                for name, call in calls.items():
                    c0 = time.process_time()
                    call()
                    samples[name].append((time.process_time() - c0) * 1e6)
            medians = {name: statistics.median(s) for name, s in samples.items()}
            base = medians["before (main: max(card.last_scan_at))"]
            print(
                f"{args.loops} loops x {args.cards} cards, {args.scanned:,} scanned, {args.pending:,} "
                f"pending (setup {setup:.0f} s); health read CPU, us, median of {args.rounds} "
                f"alternating; load {os.getloadavg()[0]:.1f}"
            )
            for name, median in medians.items():
                print(f"  {name:40s} {median:9.1f} us   {median / base:5.3f}x")
        finally:
            terminal.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
