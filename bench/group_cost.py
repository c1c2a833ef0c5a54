"""CPU and WAL frames of one-signal groups in the inbound worker, in-process (issue 19).

A paced signal (5/s, 500/s on one core) is a group of one, so every paced workload pays the
group's fixed cost per signal. This drives `InboundWorker._handle` directly, one thread, no broker
(no thread hand-offs), over one-signal groups, each under `Database.short_waits()` as `drain` runs
it on paho's thread (since branch paho5; earlier figures ran without, i.e. without its two
busy-timeout PRAGMAs a group), and prints for each checkout given with `--root`:

* CPU per group (`time.process_time` around `_handle` only), median and mean;
* WAL frames per commit (the WAL is truncated before each group, outside the timing, and its size
  read after), i.e. pages the commit wrote and fsynced. A TRUNCATE checkpoint from another
  connection also empties the writer's page cache (the WAL header changes), so every group reads
  its pages back from the OS: `--checkpoint passive` copies the WAL back after each group instead,
  as `serve`'s checkpointer does, and reads the frame count from the checkpoint's answer;
* statements per group (sqlite3 trace callback on a few extra groups, not timed).

`--marks`: each group also marks the PUBACK of the request the group before it raised, as `serve`
does at a paced rate (the relay's `join_group`: `mark_acknowledged` and the fresh rows' read, in the
group's unit of work). A stand-in relay does it, so this needs no broker either.

Checkouts are run in turn (`--rounds`), each in a fresh process and database, so a before/after
pair shares the same minutes of a shared box. CPU moves with load; frames and statements do not.

    python bench/group_cost.py --root /tmp/before --root . --signals 1000 --rounds 3
    python bench/group_cost.py --history 200000   # a log that has run a while: deeper indexes

Instructions a group (the box is shared, CPU time moves with load; instructions do not): run the
child under callgrind twice on the same line, 50 and 450 of 500 groups, and take the difference
over 400 (`--callgrind`). `GROUP_COST_PAUSE_MS=200` idles before each group (as at 5/s);
`GROUP_COST_THRASH_MB=32` writes over 32 MB before each group instead, so each group starts with
caches (and the TLB) emptied by the bench itself rather than by whatever else the box runs: on this
2-core VM a bin signal's decode took 11 us warm, 22 us after 16k pages were touched (TLB only), 29
after 4 MB, 195 after 32 MB; in-process after a 200 ms pause on the busy box it took ~160 us.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_CHILD = r"""
import json, os, sqlite3, statistics, sys, time, tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
root = Path(sys.argv[1]); n = int(sys.argv[2]); history = int(sys.argv[3]); marks = sys.argv[4] == "1"
passive = sys.argv[5] == "passive"
run = int(sys.argv[6]) if len(sys.argv) > 6 else n  # groups to run of n (same line; instruction counts)
sys.path.insert(0, str(root))
from tests.support.mqtt_lines import make_config
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.runtime.inbound import InboundWorker, _Inbound
from kanban_terminal.topics import LineTopics
with tempfile.TemporaryDirectory() as d:
    tmp = Path(d)
    extra = 20
    config, _ = make_config(tmp, loops=(n + extra + 99) // 100, cards=100, sensors=n + extra)
    t = Terminal.open(config, tmp / "data")
    db_path = t.db.path
    if history:
        # Old requests (closed) and log rows spread over every card, as a line that has run a while.
        c = sqlite3.connect(db_path)
        loops = dict(c.execute("SELECT id, loop_id FROM card").fetchall())
        cards = list(loops)
        base = datetime(2026, 1, 1, tzinfo=UTC)
        c.execute("BEGIN")
        for i in range(history):
            card = cards[i % len(cards)]
            at = (base + timedelta(seconds=30 * i)).isoformat(timespec="microseconds").replace("+00:00", "Z")
            c.execute(
                "INSERT INTO card_log (occurred_at, recorded_at, event, card_id, loop_id, from_state, "
                "to_state, request_id, actor, source, detail, hash) VALUES (?, ?, 'emptied', ?, ?, 'full', "
                "'empty', ?, NULL, 'keyboard', '', 'x')",
                (at, at, card, loops[card], f"old-{i}"),
            )
            if i % 3 == 0:
                c.execute(
                    "INSERT INTO replenishment_request (id, card_id, loop_id, loop_seq, part_number, "
                    "quantity, station, point_of_use, source, raised_at, due_at, status, closed_at, "
                    "publish_state, publish_count) VALUES (?, ?, ?, ?, 'P-1', 10, 'ST1', 'r', 'SM1', ?, ?, "
                    "'delivered', ?, 'done', 1)",
                    (f"old-{i}", card, loops[card], -i, at, at, at),
                )
        c.execute("COMMIT")
        c.close()
    topics = LineTopics(config.site.id, config.line.id)
    worker = InboundWorker(t, topics)
    if marks:
        from kanban_terminal.services.outbox import mark_acknowledged

        class _Relay:
            # What Relay.join_group does in a unit of work; every PUBACK is in by the next group.
            window = 20
            acked = []
            def join_group(self, uow, raised):
                acked, self.acked = self.acked, []
                if acked:
                    mark_acknowledged(uow, acked, t.clock())
                if raised:
                    uow.outbox.fresh(raised, self.window)
                self.acked = acked_next = [r for r, _ in raised]
                uow.after_rollback(lambda: setattr(self, "acked", acked + acked_next))

        worker.relay = _Relay()
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    items = []
    for i in range(n + extra):
        dev = f"BS{i + 1:05d}"
        p = json.dumps({"v": 1, "id": f"{dev}:b1:1", "device": dev, "boot": "b1", "seq": 1,
                        "type": "bin_empty", "at": at}).encode()
        items.append(_Inbound(f"{topics.base}/device/{dev}/signal", p, i, 1, 0))
    probe = sqlite3.connect(db_path, isolation_level=None)
    wal = Path(str(db_path) + "-wal")
    page = probe.execute("PRAGMA page_size").fetchone()[0]
    cpu, frames = [], []
    prof = None
    if os.environ.get("GROUP_COST_PROFILE"):
        import cProfile
        prof = cProfile.Profile(time.process_time)
    probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pause = float(os.environ.get("GROUP_COST_PAUSE_MS", "0")) / 1000  # idle between groups, as at 5/s
    # Caches emptied before each group by writing one byte of every 64 over this many MB: cold as at
    # 5/s on a shared box, whatever the box does meanwhile (the pause alone is cold only when busy).
    thrash = bytearray(int(os.environ.get("GROUP_COST_THRASH_MB", "0")) << 20)
    skip_group = os.environ.get("GROUP_COST_SKIP_GROUP") == "1"  # the thrash alone (cold_misses)
    strokes = [bytes([v]) * (len(thrash) // 64) for v in (1, 2)]
    for item in items[:run]:
        if pause:
            time.sleep(pause)
        if thrash:
            thrash[::64] = strokes[len(cpu) % 2]
        if not passive:
            probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c0 = time.process_time()
        if prof: prof.enable()
        if not skip_group:
            with t.db.short_waits():  # as `InboundWorker.drain` runs each group on paho's thread
                worker._handle([item])
        if prof: prof.disable()
        cpu.append(time.process_time() - c0)
        if passive:
            # Copied back, not truncated: the writer restarts the WAL at its next group itself,
            # as in serve (storage/checkpointer.py), and keeps its page cache.
            frames.append(probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
        else:
            frames.append((wal.stat().st_size - 32) / (page + 24))
    statements = []
    def count(sql):
        statements.append(sql)
    held = []
    for item in items[n:]:
        with t.db.write_engine.connect() as conn:
            conn.connection.driver_connection.set_trace_callback(count)
        held_conn = getattr(t.db, "_held", None)  # the inbound worker's own connection, if any
        if held_conn is not None:
            held_conn.connection.driver_connection.set_trace_callback(count)
        held.append(len(statements))
        with t.db.short_waits():
            worker._handle([item])
        held[-1] = len(statements) - held[-1]
    if prof:
        import pstats
        pstats.Stats(prof, stream=sys.stderr).sort_stats(os.environ["GROUP_COST_PROFILE"]).print_stats(40)
    applied, dup = worker.signals_applied, worker.signals_duplicate
    t.close()
    print(json.dumps({"cpu": cpu, "frames": frames, "statements": held, "applied": applied,
                      "duplicate": dup, "sample": statements[:20]}))
"""


def run_one(
    root: Path, signals: int, history: int, marks: bool = False, checkpoint: str = "truncate"
) -> dict[str, Any]:
    args = [str(root.resolve()), str(signals), str(history), "1" if marks else "0", checkpoint]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        check=True, capture_output=True, text=True, cwd=root,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def instructions_per_group(root: Path, marks: bool, checkpoint: str, low: int = 50, high: int = 450) -> float:
    """User-space instructions a one-signal group: callgrind over `high` minus over `low` groups of the
    same line (500 sensors), divided by the difference, so start-up and the line's set-up cancel."""
    counts = []
    for groups in (low, high):
        args = [str(root.resolve()), "500", "0", "1" if marks else "0", checkpoint, str(groups)]
        grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        out = subprocess.run(
            [*grind, sys.executable, "-c", _CHILD, *args],
            check=True, capture_output=True, text=True, cwd=root,
        )  # fmt: skip
        refs = [ln for ln in out.stderr.splitlines() if "Collected :" in ln]
        counts.append(int(refs[-1].split(":")[1].strip()))
    return (counts[1] - counts[0]) / (high - low)


COLD_CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=33554432,16,64")
"""This VM's caches as callgrind simulates them (lscpu: 32 KB L1 each, 32 MB L3; valgrind's own probe
reads the L3 as 320 MB direct-mapped); the thrash writes over twice the LL before each group."""


def cold_misses_per_group(
    root: Path, marks: bool, checkpoint: str, low: int = 5, high: int = 25
) -> dict[str, float]:
    """Cache misses of a one-signal group that starts with empty caches, from callgrind's cache
    simulation (load-independent, unlike CPU time): `high` minus `low` groups, each after the 64 MB
    thrash, minus the same run with the thrash alone, over the difference. A last-level miss (`LLm`)
    is a trip to memory, ~100 ns here: what a group at 5/s pays on top of its instructions."""

    def argv(groups: int) -> list[str]:
        args = [str(root.resolve()), "500", "0", "1" if marks else "0", checkpoint, str(groups)]
        return [sys.executable, "-c", _CHILD, *args]

    return cold_misses(argv, root, low, high)


def cold_misses(
    argv_of: Callable[[int], list[str]], cwd: Path, low: int = 5, high: int = 25
) -> dict[str, float]:
    """`cold_misses_per_group`'s measure for any child that honours `GROUP_COST_THRASH_MB` and
    `GROUP_COST_SKIP_GROUP`: `argv_of(n)` runs n signals of one line (bench/same_work_cost.py's
    replay and minimal use it too)."""
    events: dict[str, list[dict[str, int]]] = {}
    for skip in ("0", "1"):
        for groups in (low, high):
            grind = ["valgrind", "--tool=callgrind", "--cache-sim=yes", *COLD_CACHES]
            grind.append("--callgrind-out-file=/dev/null")
            env = dict(os.environ, GROUP_COST_THRASH_MB="64", GROUP_COST_SKIP_GROUP=skip)
            out = subprocess.run(
                [*grind, *argv_of(groups)], check=True, capture_output=True, text=True, cwd=cwd, env=env
            )
            names = [ln for ln in out.stderr.splitlines() if "Events    :" in ln][-1].split(":")[1].split()
            counts = [ln for ln in out.stderr.splitlines() if "Collected :" in ln][-1].split(":")[1].split()
            events.setdefault(skip, []).append(dict(zip(names, map(int, counts), strict=True)))

    def per_group(name: str) -> float:
        run, alone = events["0"], events["1"]
        return ((run[1][name] - run[0][name]) - (alone[1][name] - alone[0][name])) / (high - low)

    return {
        "Ir": per_group("Ir"),
        "L1m": per_group("I1mr") + per_group("D1mr") + per_group("D1mw"),
        "LLm": per_group("ILmr") + per_group("DLmr") + per_group("DLmw"),
        "ILm": per_group("ILmr"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root", action="append", type=Path, help="a checkout to measure (repeatable; default .)"
    )
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--history", type=int, default=0, help="card-log rows written before the run")
    ap.add_argument("--show-sql", action="store_true", help="print one group's statements")
    ap.add_argument(
        "--marks", action="store_true", help="each group also marks the previous group's PUBACK (as serve)"
    )
    ap.add_argument(
        "--checkpoint", choices=("truncate", "passive"), default="truncate",
        help="between groups: TRUNCATE the WAL (default; also empties the writer's page cache) or "
        "copy it back PASSIVE as serve does",
    )  # fmt: skip
    ap.add_argument(
        "--callgrind", action="store_true", help="also count instructions a group (valgrind; ~2 min a root)"
    )
    ap.add_argument(
        "--cold-misses", action="store_true",
        help="also count cache misses of a group that starts cold (callgrind's cache simulation)",
    )  # fmt: skip
    args = ap.parse_args()
    roots: list[Path] = args.root or [Path(".")]
    print(f"load average at start: {os.getloadavg()[0]:.2f} (a shared box moves CPU, not frames)")
    for rnd in range(args.rounds):
        for root in roots:
            r = run_one(root, args.signals, args.history, args.marks, args.checkpoint)
            cpu = [1e6 * c for c in r["cpu"]]
            frames, stmts = r["frames"], r["statements"]
            print(
                f"round {rnd + 1} {root}: {len(cpu)} one-signal groups, CPU/group median "
                f"{statistics.median(cpu):,.0f} us mean {statistics.mean(cpu):,.0f} us; WAL frames/commit "
                f"{statistics.mean(frames):.2f}; statements/group {statistics.median(stmts):.0f}; "
                f"applied {r['applied']} dup {r['duplicate']}"
            )
            if args.callgrind and rnd == 0:
                ins = instructions_per_group(root, args.marks, args.checkpoint)
                print(f"    instructions/group (callgrind, 450 - 50 groups): {ins / 1e6:.3f} M")
            if args.cold_misses and rnd == 0:
                cm = cold_misses_per_group(root, args.marks, args.checkpoint)
                print(
                    f"    cold group (callgrind cache simulation, 25 - 5 groups after a 64 MB thrash): "
                    f"{cm['Ir'] / 1e6:.3f} M instructions, {cm['L1m']:,.0f} L1 misses, "
                    f"{cm['LLm']:,.0f} last-level misses ({cm['ILm']:,.0f} of them instruction fetches)"
                )
            if args.show_sql and rnd == 0:
                for sql in r["sample"]:
                    print("   ", str(sql)[:150])


if __name__ == "__main__":
    main()
