"""A one-signal group in-process: `serve`'s `InboundWorker._handle` against the same-work replay.

Both on one thread, no broker, no thread hand-off, each in a fresh process and file of the same
line (bench/group_cost.py's child for `serve`, with the previous PUBACK's mark and the WAL copied back
PASSIVE after each group as `serve`'s checkpointer does; the same for the replay), so the
difference is what `serve`'s code does around the same statements: the wire schema's decode, the
scan's domain decision, the unit of work, SQLAlchemy, the signal store, the relay's mark.

    python bench/same_work.py capture /tmp/t.json
    python bench/same_work_cost.py /tmp/t.json --signals 1000 --rounds 2 [--callgrind]

`GROUP_COST_PAUSE_MS=200` idles that long before each group in both (as at 5/s: caches go cold).
CPU a group moves with the box's load; instructions (`--callgrind`: valgrind over 450 minus 50
groups of one line, divided by 400) do not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import group_cost  # noqa: E402

_CHILD = r"""
import json, os, sqlite3, subprocess, sys, tempfile, time
from datetime import UTC, datetime
from pathlib import Path
root, templates, n, run = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
profile = os.environ.get("SAME_WORK_PROFILE", "")  # a pstats sort key: cProfile to stderr
sys.path.insert(0, str(root))
from bench import pipeline_proc, same_work
from tests.support.mqtt_lines import line_config
with tempfile.TemporaryDirectory() as d:
    tmp = Path(d)
    cfg = tmp / "line.toml"
    cfg.write_text(line_config(loops=(n + 99) // 100, cards=100, sensors=n, line="SWC"))
    subprocess.run([sys.executable, "-c", pipeline_proc._CREATE, str(cfg), str(tmp / "data")], check=True)
    templated = same_work.Templates.load(templates.read_text())
    replayer, bins = same_work.replayer_for(cfg, tmp / "data", templated)
    probe = sqlite3.connect(tmp / "data" / "terminal.db", isolation_level=None)
    probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payloads = [json.dumps({"v": 1, "id": f"BS{i:05d}:b1:1", "device": f"BS{i:05d}", "boot": "b1", "seq": 1,
                            "type": "bin_empty", "at": at}).encode() for i in range(1, n + 1)]
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile(time.process_time)
    cpu, frames = [], []
    pause = float(os.environ.get("GROUP_COST_PAUSE_MS", "0")) / 1000  # idle between groups, as at 5/s
    thrash = bytearray(int(os.environ.get("GROUP_COST_THRASH_MB", "0")) << 20)  # as group_cost's child
    skip_group = os.environ.get("GROUP_COST_SKIP_GROUP") == "1"
    strokes = [bytes([v]) * (len(thrash) // 64) for v in (1, 2)]
    for payload in payloads[:run]:
        if pause:
            time.sleep(pause)
        if thrash:
            thrash[::64] = strokes[len(cpu) % 2]
        c0 = time.process_time()
        if prof: prof.enable()
        if not skip_group:
            data = json.loads(payload)
            replayer.signal(data["device"], bins[data["device"]], data["at"])
        if prof: prof.disable()
        cpu.append(time.process_time() - c0)
        frames.append(probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    if prof:
        import pstats
        pstats.Stats(prof, stream=sys.stderr).sort_stats(profile).print_stats(25)
    replayer.con.close()
    print(json.dumps({"cpu": cpu, "frames": frames}))
"""


_MINIMAL = r"""
import json, os, sqlite3, sys, tempfile
from pathlib import Path
n, run = int(sys.argv[1]), int(sys.argv[2])
with tempfile.TemporaryDirectory() as d:
    # bench/pipeline_proc.py `run_minimal`'s tables and statements, its `on_message` without paho.
    con = sqlite3.connect(Path(d) / "m.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE s (k TEXT PRIMARY KEY, at TEXT)")
    con.execute("CREATE TABLE o (id INTEGER PRIMARY KEY, body TEXT, state TEXT)")
    at = "2026-12-06T00:00:00.000Z"
    payloads = [json.dumps({"v": 1, "id": f"BS{i:05d}:b1:1", "device": f"BS{i:05d}", "boot": "b1", "seq": 1,
                            "type": "bin_empty", "at": at}).encode() for i in range(n)]
    thrash = bytearray(int(os.environ.get("GROUP_COST_THRASH_MB", "0")) << 20)
    skip_group = os.environ.get("GROUP_COST_SKIP_GROUP") == "1"
    strokes = [bytes([v]) * (len(thrash) // 64) for v in (1, 2)]
    for i, payload in enumerate(payloads[:run]):
        if thrash:
            thrash[::64] = strokes[i % 2]
        if not skip_group:
            data = json.loads(payload)
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT OR IGNORE INTO s VALUES (?, ?)", (data["id"], data["at"]))
            con.execute("INSERT INTO o (body, state) VALUES (?, 'pending')", (payload,))
            con.execute("COMMIT")
"""


def cold_floor(templates: Path) -> None:
    """Cold cost a signal of the three pipelines' own work (no broker, no paho, no publish in any)."""
    kinds = {
        "minimal": lambda g: [sys.executable, "-c", _MINIMAL, "500", str(g)],
        "same-work replay": lambda g: [
            sys.executable,
            "-c",
            _CHILD,
            str(ROOT),
            str(templates),
            "500",
            str(g),
        ],
    }
    figures = {k: group_cost.cold_misses(argv, ROOT) for k, argv in kinds.items()}
    figures["serve's _handle"] = group_cost.cold_misses_per_group(ROOT, True, "passive")
    base = figures["minimal"]
    for name, f in figures.items():
        ins, misses = f["Ir"] / base["Ir"], f["LLm"] / base["LLm"]
        print(
            f"cold signal, {name}: {f['Ir'] / 1e6:.3f} M instructions ({ins:.2f}x the minimal), "
            f"{f['LLm']:,.0f} last-level misses ({misses:.2f}x; {f['ILm']:,.0f} of them instruction fetches)"
        )


def run_replay(templates: Path, signals: int, run: int | None = None) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), str(templates), str(signals), str(run or signals)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def replay_instructions(templates: Path, low: int = 50, high: int = 450) -> float:
    """User-space instructions a replayed signal, as `group_cost.instructions_per_group` counts them."""
    counts = []
    for groups in (low, high):
        grind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        out = subprocess.run(
            [*grind, sys.executable, "-c", _CHILD, str(ROOT), str(templates), "500", str(groups)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        refs = [ln for ln in out.stderr.splitlines() if "Collected :" in ln]
        counts.append(int(refs[-1].split(":")[1].strip()))
    return (counts[1] - counts[0]) / (high - low)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("templates", type=Path, help="from `python bench/same_work.py capture OUT.json`")
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--callgrind", action="store_true", help="also instructions a group (~3 min)")
    ap.add_argument(
        "--cold-floor", action="store_true",
        help="only the cold cost a signal (callgrind's cache simulation after a 64 MB thrash) of the "
        "minimal, the same-work replay and serve's group: the floor at 5/s, load-independent (~10 min)",
    )  # fmt: skip
    args = ap.parse_args()
    if args.cold_floor:
        cold_floor(args.templates)
        return
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    for rnd in range(args.rounds):
        serve = group_cost.run_one(ROOT, args.signals, 0, marks=True, checkpoint="passive")
        same = run_replay(args.templates, args.signals)
        s_cpu = statistics.median(serve["cpu"]) * 1e6
        w_cpu = statistics.median(same["cpu"]) * 1e6
        print(
            f"round {rnd + 1}: one-signal group with its mark, CPU median: serve's _handle {s_cpu:,.0f} us, "
            f"same-work replay {w_cpu:,.0f} us ({s_cpu / w_cpu:.2f}x); WAL frames a commit "
            f"{statistics.mean(serve['frames']):.1f} / {statistics.mean(same['frames']):.1f}"
        )
    if args.callgrind:
        s_ins = group_cost.instructions_per_group(ROOT, True, "passive")
        w_ins = replay_instructions(args.templates)
        print(
            f"instructions a group (callgrind, 450 - 50 groups): serve's _handle {s_ins / 1e6:.3f} M, "
            f"same-work replay {w_ins / 1e6:.3f} M ({s_ins / w_ins:.2f}x)"
        )


if __name__ == "__main__":
    main()
