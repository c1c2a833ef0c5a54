"""What an idle `serve` costs: CPU and wake-ups a second, per thread, beside the minimal pipeline.

    python bench/idle_wakeups.py                 # 30 s of each, after 5 s to settle
    python bench/idle_wakeups.py --seconds 60 --cards 1000

Both pipelines run as in bench/line_pc.py (their own process, the same broker, `serve` on a
database created beforehand) and receive no signal at all. Over the window the bench reads each
thread's voluntary + involuntary context switches (/proc/PID/task/*/status) and utime + stime
(/proc/PID/task/*/stat; per thread, schedstat's nanoseconds where the kernel has them). `serve` runs
through this file's `--named` wrapper, which gives every Python thread its name at the OS level
(prctl PR_SET_NAME; Python 3.11 does not), so the table says which job wakes. At 5 signals/s an
idle wake-up a second costs 0.2 wake-ups a signal, and an idle millisecond of CPU a second 200 us
a signal (issue 19).

With `--rate R`, the window carries R bin signals a second (paced, as bench/line_pc.py sends them)
and every figure is also given per signal: which thread wakes how often for one signal.

A diagnostic for the bench only: the wrapper is not part of the product.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICK = os.sysconf("SC_CLK_TCK")
PR_SET_NAME = 15


def name_threads() -> None:
    """Every Python thread started from here on carries its name into /proc (15 bytes at most)."""
    libc = ctypes.CDLL(None, use_errno=True)
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap(self: threading.Thread) -> None:
        libc.prctl(PR_SET_NAME, self.name.encode()[:15], 0, 0, 0)
        original(self)

    threading.Thread._bootstrap_inner = bootstrap  # type: ignore[attr-defined]


def per_thread(pid: int) -> dict[str, tuple[int, float]]:
    """Thread name (with its tid) -> (context switches, CPU seconds)."""
    out: dict[str, tuple[int, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name, switches = "?", 0
        for line in status.splitlines():
            if line.startswith("Name:"):
                name = line.split(None, 1)[1] if len(line.split()) > 1 else "?"
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK
        # Nanoseconds on the CPU (schedstat): a thread's few ms a minute are lost in 10 ms ticks.
        with contextlib.suppress(OSError, ValueError, IndexError):
            cpu = int((task / "schedstat").read_text().split()[0]) / 1e9
        out[f"{name}/{task.name}"] = (switches, cpu)
    return out


def process_totals(pid: int) -> tuple[int, float]:
    """All threads, dead ones too (the process's own stat counts them)."""
    from bench.line_pc import cpu_s, switches

    return switches(pid), cpu_s(pid)


def measure(
    pid: int, settle_s: float, seconds: float, load: Callable[[], object] | None = None
) -> tuple[float, float, dict[str, tuple[float, float]]]:
    time.sleep(settle_s)
    t0, sw0, cpu0 = time.monotonic(), *process_totals(pid)
    before = per_thread(pid)
    if load is not None:
        load()
    else:
        time.sleep(seconds)
    after = per_thread(pid)
    t1, sw1, cpu1 = time.monotonic(), *process_totals(pid)
    span = t1 - t0
    zero = (0, 0.0)
    threads = {
        k: ((after[k][0] - before.get(k, zero)[0]) / span, (after[k][1] - before.get(k, zero)[1]) / span)
        for k in after
    }
    return (sw1 - sw0) / span, (cpu1 - cpu0) / span * 1000, threads


def run_one(kind: str, i: int, args: argparse.Namespace, port: int, tmp: Path) -> None:
    """One pipeline, measured over the window (with `args.rate` signals a second in it), printed."""
    from bench import pipeline_proc
    from bench.mqtt_pipeline import client, publish_paced
    from kanban_terminal.topics import LineTopics

    n = int(args.rate * args.seconds)
    line, prefix = f"IDLE{i}", f"bench/idle{i}"
    topics = LineTopics("S1", line)

    def what(k: int) -> tuple[str, str, int, str]:
        if kind == "minimal":
            return f"{prefix}/signals", f"D{k}", k, f"/D{k}"
        return topics.device_signal(f"BS{k:05d}"), f"BS{k:05d}", 1, f"{line}/C{k:05d}"

    pub = client(port, f"pub-{i}", inflight=1000)
    load = (lambda: publish_paced(pub, n, args.rate, what)) if n else None
    if kind == "minimal":
        with pipeline_proc.minimal(port, tmp / f"mini{i}.db", prefix) as proc:
            wake, cpu_ms, threads = measure(proc.pid, args.settle, args.seconds, load)
    else:
        root = args.before if kind == "before" else pipeline_proc.ROOT
        with pipeline_proc.serving(
            port, tmp / f"serve{i}", max(args.cards, n), line, existing=True,
            argv=(str(root / "bench" / "idle_wakeups.py"), "--named"), root=root,
        ) as proc:  # fmt: skip
            wake, cpu_ms, threads = measure(proc.pid, args.settle, args.seconds, load)
    pub.disconnect()
    pub.loop_stop()
    per = f"; per signal {wake / args.rate:.2f} wake-ups, {cpu_ms / args.rate * 1000:.0f} us" if n else ""
    print(f"  {kind}: {wake:.2f} wake-ups/s, {cpu_ms:.2f} ms CPU/s{per}", flush=True)
    for name, (w, c) in sorted(threads.items(), key=lambda kv: -kv[1][0]):
        if w or c:
            per = f"  {w / args.rate:5.2f} / signal" if n else ""
            print(f"      {name:<24} {w:6.2f} wake-ups/s  {c * 1000:6.2f} ms CPU/s{per}")


def main() -> None:
    from tests.support.mosquitto import Mosquitto

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--kinds", default="minimal,serve")
    parser.add_argument("--rate", type=float, default=0.0, help="bin signals a second in the window")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a checkout of an older commit with this file copied in: its `serve` too",
    )
    args = parser.parse_args()
    kinds = args.kinds.split(",") + (["before"] if args.before else [])
    print(
        f"idle cost over {args.seconds:g} s after {args.settle:g} s, load average "
        f"{os.getloadavg()[0]:.1f} at {time.strftime('%H:%M UTC', time.gmtime())}"
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mosq = Mosquitto(tmp / "broker").start()
        try:
            for i, kind in enumerate(kinds):
                run_one(kind, i, args, mosq.port, tmp)
        finally:
            mosq.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--named"]:
        from kanban_terminal.runtime.serve import main as serve_main

        name_threads()
        raise SystemExit(serve_main(sys.argv[2:]))
    main()
