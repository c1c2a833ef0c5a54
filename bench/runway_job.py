"""The runway job's CPU a signal as `serve` runs it at 5 signals/s on bench/line_pc.py's line (issue 19).

    python bench/runway_job.py [--root /tmp/before --root .] [--signals 1000] [--pause-ms 200] [--rounds 2]
                               [--gap 2 --gap 5] [--spread] [--steady 144000]

line_pc.py's `--cards 20000` line: 200 loops of 100 cards, signal i empties card i, so 2 s of
signals at 5/s are 10 cards of one loop (`--spread`: signal i in loop i mod 200, so a step's
signals are in as many loops; `--steady N`: the window holds N earlier signals' log rows at 5/s,
144,000 for the 8 hours of a line at its sized rate). Here, in-process, no broker: each signal a
bin-empty scan (`record_scan`, clock +200 ms), its `CardsChanged` noted by a `RunwayJob` as the
runtime wires it,
and every gap x 5 signals one `RunwayJob.step()` (the gap: the checkout's `GAP_S`, 2 s before it
existed, or `--gap`), with `check_seconds` = 30 on the same fake clock, so a full pass comes
every 150 signals as in `serve`. `--pause-ms` idles before each step (caches go cold as between
`serve`'s steps). Printed per checkout and gap: the thread CPU of the steps (`time.thread_time`)
a signal, split into full passes and passes over the changed loops (quiet ones, and the few that
raised a loop's warning), the screen's read of the runways after a signal (`read_runways`, median
of 6, after the steps), and the ratio to the first row. Each row runs in a process of its own,
the rows in turn (`--rounds`), so they share the box's minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, logging, statistics, sys, tempfile, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
root, n, pause, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000, float(sys.argv[4])
spread, steady = sys.argv[5] == "1", int(sys.argv[6])
sys.path.insert(0, root)
from kanban_terminal.runtime import runway_job as rj
from kanban_terminal.runtime.runway_job import RunwayJob
every = max(1, round((gap if gap > 0 else getattr(rj, "GAP_S", 2.0)) * 5))  # signals a step at 5/s
from kanban_terminal.services.runway import RunwayMonitor
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.support.andon import FakeClock
from tests.support.mqtt_lines import make_config
logging.disable(logging.WARNING)
with tempfile.TemporaryDirectory() as d:
    cfg, _ = make_config(Path(d), loops=200, cards=100, sensors=0)
    clock = FakeClock(datetime(2026, 12, 1, 6, tzinfo=UTC))
    t = Terminal.open(cfg, Path(d) / "data", clock=clock)
    mono = [0.0]
    if steady:  # --steady: the window as a line at 5/s leaves it, written by SQL (no chain kept)
        import sqlite3
        db = sqlite3.connect(Path(d) / "data" / "terminal.db", isolation_level=None)
        db.execute(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1), "
            "e(ev) AS (VALUES ('bin_empty'), ('request_raised'), ('delivered')) "
            "INSERT INTO card_log (occurred_at, recorded_at, event, card_id, loop_id, source, detail, hash) "
            "SELECT x.at, x.at, e.ev, printf('C%05d', i % 20000 + 1), 'LP' || (i % 20000 / 100), 'keyboard', "
            "'', 'bench' FROM (SELECT i, strftime('%Y-%m-%dT%H:%M:%f', '2026-12-01 06:00:00', "
            "'+' || (i * 0.2) || ' seconds') || '000Z' AS at FROM s) AS x, e ORDER BY i",
            (steady,),
        )
        db.close()
        clock.now += timedelta(seconds=steady * 0.2)
        mono[0] += steady * 0.2
    job = RunwayJob(RunwayMonitor(t), t.card_loops, 30.0, monotonic=lambda: mono[0])
    t.bus.subscribe(job.note)
    job.step()  # start-up's full pass, not counted
    out = {"full": [], "quiet": [], "warned": [], "screen": []}
    for i in range(n):
        clock.now += timedelta(milliseconds=200)
        mono[0] += 0.2
        card = (i % 200) * 100 + i // 200 + 1 if spread else i + 1  # --spread: signal i in loop i mod 200
        record_scan(t, f"C{card:05d}", source="keyboard")
        if i % every == every - 1:
            if pause:
                time.sleep(pause)
            full = job.passes["full"]
            c0 = time.thread_time()
            done = job.step()
            c = time.thread_time() - c0
            out["full" if job.passes["full"] > full else "warned" if done else "quiet"].append(c)
    from kanban_terminal.services.runway import read_runways
    for i in range(n, n + 6):  # the screen's read of the board's runways after a signal, as `run` does
        clock.now += timedelta(milliseconds=200)
        record_scan(t, f"C{i % 20000 + 1:05d}", source="keyboard")
        if pause:
            time.sleep(pause)
        c0 = time.thread_time()
        read_runways(t)
        out["screen"].append(time.thread_time() - c0)
    t.close()
out["every"] = [every]
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", help="checkouts to compare (default: this one)")
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--pause-ms", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--gap", type=float, action="append",
        help="seconds between two steps (default: the checkout's `GAP_S`, else 2); repeat to compare",
    )  # fmt: skip
    parser.add_argument(
        "--spread", action="store_true",
        help="signal i empties a card of loop i mod 200 (each step's changes in as many loops as signals)",
    )  # fmt: skip
    parser.add_argument(
        "--steady", type=int, default=0, metavar="N",
        help="before the signals, N signals' log rows at 5/s (bin-empty, request, delivery) in the window "
        "(144000: a shift at the line's sized rate)",
    )  # fmt: skip
    args = parser.parse_args()
    roots = [Path(r).resolve() for r in (args.root or [Path(__file__).resolve().parents[1]])]
    print(
        f"{args.signals} signals at 5/s (fake clock), a step every gap x 5 signals, "
        f"pause {args.pause_ms:g} ms before each; thread CPU in us"
    )
    print(f"{'checkout':<28}{'gap':>5}{'a signal':>9}{'full':>7}{'loops':>7}{'full pass':>11}"
          f"{'quiet pass':>12}{'warned':>8}{'screen':>9}   (steps / signals; passes: median)")  # fmt: skip
    first: float | None = None
    for _ in range(args.rounds):
        for root, gap in [(r, g) for r in roots for g in (args.gap or [0.0])]:
            child = [sys.executable, "-c", _CHILD, str(root), str(args.signals), str(args.pause_ms), str(gap),
                     "1" if args.spread else "0", str(args.steady)]  # fmt: skip
            out = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
            every = out.pop("every")[0]
            screen = sorted(out.pop("screen"))[3] * 1e6
            per = {k: sum(v) / args.signals * 1e6 for k, v in out.items()}
            total = sum(per.values())
            first = first or total
            med = {k: sorted(v)[len(v) // 2] * 1e6 if v else 0.0 for k, v in out.items()}
            print(
                f"{str(root)[-28:]:<28}{every / 5:>5g}{total:>9,.0f}{per['full']:>7,.0f}"
                f"{per['quiet'] + per['warned']:>7,.0f}{med['full']:>11,.0f}{med['quiet']:>12,.0f}"
                f"{med['warned']:>8,.0f}{screen:>9,.0f}   {total / first:.2f}x the first"
            )
    print("(CPU on a shared box: compare rows of the same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
