"""The runway job's CPU a signal as `serve` runs it at 5 signals/s on bench/line_pc.py's line (issue 19).

    python bench/runway_job.py [--root /tmp/before --root .] [--signals 1000] [--pause-ms 200] [--rounds 2]

line_pc.py's `--cards 20000` line: 200 loops of 100 cards, signal i empties card i, so 2 s of
signals at 5/s are 10 cards of one loop. Here, in-process, no broker: each signal a bin-empty scan
(`record_scan`, clock +200 ms), its `CardsChanged` noted by a `RunwayJob` as the runtime wires it,
and every 10 signals one `RunwayJob.step()` (the job's 2 s gap), with `check_seconds` = 30 on the same
fake clock, so a full pass comes every 150 signals as in `serve`. `--pause-ms` idles before each
step (caches go cold as between `serve`'s steps). Printed per checkout: the thread CPU of the
steps (`time.thread_time`) a signal, split into full passes and passes over the changed loops
(quiet ones, and the few that raised a loop's warning), and the checkouts' ratio. Each checkout runs
in a process of its own, the checkouts in turn (`--rounds`), so they share the box's minutes.
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
root, n, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
sys.path.insert(0, root)
from kanban_terminal.runtime.runway_job import RunwayJob
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
    job = RunwayJob(RunwayMonitor(t), t.card_loops, 30.0, monotonic=lambda: mono[0])
    t.bus.subscribe(job.note)
    job.step()  # start-up's full pass, not counted
    out = {"full": [], "quiet": [], "warned": []}
    for i in range(n):
        clock.now += timedelta(milliseconds=200)
        mono[0] += 0.2
        record_scan(t, f"C{i + 1:05d}", source="keyboard")
        if i % 10 == 9:
            if pause:
                time.sleep(pause)
            full = job.passes["full"]
            c0 = time.thread_time()
            done = job.step()
            c = time.thread_time() - c0
            out["full" if job.passes["full"] > full else "warned" if done else "quiet"].append(c)
    t.close()
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", action="append", help="checkouts to compare (default: this one)")
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--pause-ms", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    roots = [Path(r).resolve() for r in (args.root or [Path(__file__).resolve().parents[1]])]
    print(
        f"{args.signals} signals at 5/s (fake clock), a step every 10, pause {args.pause_ms:g} ms "
        "before each; thread CPU in us"
    )
    print(f"{'checkout':<28}{'a signal':>9}{'full':>7}{'loops':>7}{'full pass':>11}{'quiet pass':>12}"
          f"{'warned':>8}   (a signal: all steps / signals; passes: median)")  # fmt: skip
    first: float | None = None
    for _ in range(args.rounds):
        for root in roots:
            child = [sys.executable, "-c", _CHILD, str(root), str(args.signals), str(args.pause_ms)]
            out = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
            per = {k: sum(v) / args.signals * 1e6 for k, v in out.items()}
            total = sum(per.values())
            first = first or total
            med = {k: sorted(v)[len(v) // 2] * 1e6 if v else 0.0 for k, v in out.items()}
            print(
                f"{str(root)[-28:]:<28}{total:>9,.0f}{per['full']:>7,.0f}"
                f"{per['quiet'] + per['warned']:>7,.0f}{med['full']:>11,.0f}{med['quiet']:>12,.0f}"
                f"{med['warned']:>8,.0f}   {total / first:.2f}x the first"
            )
    print("(CPU on a shared box: compare rows of the same run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
