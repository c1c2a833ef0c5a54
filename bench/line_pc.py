"""Cost per signal on a line PC: CPU, wake-ups, latency and stalls of `serve` beside the minimal pipeline.

    python bench/line_pc.py                 # everything issue 19 asks for (~25 min on the dev VM)
    python bench/line_pc.py --quick         # the same shape with fewer samples (~5 min)

Both pipelines run in a process of their own (bench/pipeline_proc.py), pinned to one core
(`taskset -c 0`, a line PC's Celeron/Atom core is the budget), on three disks: this VM's, and every
fsync/fdatasync slowed by +0.5 ms and +2 ms (bench/slow_fsync.c preloaded into the two pipelines
only; the broker and this process keep the real disk). Per disk and per workload (a burst, and
signals paced at 5/s, 50/s and 500/s), each pipeline is started fresh and measured from outside:

* CPU per signal: the pipeline process's utime+stime (/proc/PID/stat, every thread, dead ones
  too) over the workload, divided by the signals;
* wake-ups per signal: context switches of all its threads (/proc/PID/task/*/status);
* p50 / p99 / max of bin-empty published -> request seen by an independent subscriber (the max is
  the longest stall a signal saw: at a paced rate nothing else delays a signal that long);
* ingest: signals/s of the burst until the last request is upstream;
* `serve` RSS when ready and its peak over the burst (VmRSS / VmHWM, the mark reset when ready).

`--kinds minimal,samework,serve` adds bench/same_work.py (`serve`'s statements, paho + sqlite3 only)
and a table of the three: samework/minimal is what `serve`'s rows cost, serve/samework its code.

Ratios are `serve` over the minimal pipeline measured in the same run, the same minutes. The box is
shared; CPU time is what a busy neighbour disturbs least (waits are not counted), wall-clock figures
(latency, ingest) more.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import pipeline_proc, same_work, same_work_capture, same_work_report, thread_names  # noqa: E402
from bench.fleet import Sink  # noqa: E402
from bench.mqtt_pipeline import client, publish_paced, wait  # noqa: E402
from kanban_terminal.topics import LineTopics  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    """One pipeline over one workload."""

    signals: int
    cpu_s: float
    switches: int
    elapsed_s: float
    ms: list[float]
    rss_ready_mb: float = 0.0
    rss_peak_mb: float = 0.0
    threads: dict[str, float] | None = None
    """CPU seconds by thread name over the workload (`--threads`, `serve` only)."""

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.signals * 1e6

    @property
    def wakeups(self) -> float:
        return self.switches / self.signals

    @property
    def rate(self) -> float:
        return self.signals / self.elapsed_s

    def pct(self, q: float) -> float:
        s = sorted(self.ms)
        return s[max(0, int(len(s) * q) - 1)] if s else float("nan")

    @property
    def p50(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:
            continue  # a thread that just ended
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def vm_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    total_runs = 0

    def __init__(
        self,
        port: int,
        tmp: Path,
        pin: str,
        env: dict[str, str],
        trace: bool = False,
        before: Path | None = None,
        cards: int = 0,
    ):
        self.cards = cards
        """Cards of `serve`'s line (at least one a signal): the runway job's work grows with it."""
        self.trace = trace
        self.threads = False
        """Run `serve` under bench/thread_names.py and keep its CPU by thread (`--threads`)."""
        self.before = before
        self.port = port
        self.tmp = tmp
        self.launcher: tuple[str, ...] = ("taskset", "-c", pin) if pin else ()
        self.env = env
        self.runs = 0
        tmp.mkdir(parents=True, exist_ok=True)

    def _home(self, what: str) -> Path:
        Bench.total_runs += 1  # unique line, topics and client ids on the one broker of the run
        self.runs = Bench.total_runs
        return self.tmp / f"{self.runs:03d}-{what}"

    @contextmanager
    def _pipeline(
        self, kind: str, n: int
    ) -> Iterator[tuple[int, str, Callable[[int], tuple[str, str, int, str]]]]:
        """Start one pipeline; yields (pid, requests topic, signal i -> (topic, device, seq, key))."""
        home = self._home(kind)
        if kind == "samework":
            line = f"LP{self.runs}"
            with same_work.same_work(
                self.port,
                home,
                max(n, self.cards),
                line,
                self.templates(),
                launcher=self.launcher,
                env=self.env,
            ) as proc:
                yield proc.pid, LineTopics("S1", line).requests, signals_of(line)
            return
        if kind == "minimal":
            prefix = f"bench/mini{self.runs}"
            with pipeline_proc.minimal(
                self.port, home.with_suffix(".db"), prefix, launcher=self.launcher, env=self.env
            ) as proc:
                yield proc.pid, f"{prefix}/requests", lambda i: (f"{prefix}/signals", f"D{i}", i, f"/D{i}")
            return
        line = f"LP{self.runs}"
        topics = LineTopics("S1", line)
        root = self.before if kind == "before" and self.before else pipeline_proc.ROOT
        # The wrappers of `root`'s own checkout: each puts its checkout first on sys.path, so this
        # file's copy made a `--before` run with `--threads` or `--trace` import this checkout's code.
        argv = (
            (str(root / "bench" / "stall_trace.py"),)
            if self.trace
            else (str(root / "bench" / "thread_names.py"),)
            if self.threads
            else ("-m", "kanban_terminal.runtime")
        )
        with pipeline_proc.serving(
            self.port,
            home,
            max(n, self.cards),
            line,
            prefix=self.launcher,
            env=self.env,
            argv=argv,
            existing=True,
            root=root,
        ) as proc:
            yield proc.pid, topics.requests, signals_of(line)
        if self.trace:
            lines = [
                x
                for x in (home / "serve.log").read_text().splitlines()
                if x.startswith(("stall-trace", "    "))
            ]
            print(f"    stall trace of `serve` ({home / 'serve.log'}):")
            for x in lines[:40]:
                print(f"      {x}")

    def templates(self) -> Path:
        """`serve`'s SQL of a one-signal group, captured once a run (bench/same_work.py)."""
        path = self.tmp.parent / "samework-templates.json"
        if not path.exists():
            captured = same_work_capture.capture(self.port, self.tmp.parent / "samework-capture")
            path.write_text(same_work.Templates.build(captured).dump())
        return path

    def run(self, kind: str, n: int, rate: float | None) -> Figures:
        with self._pipeline(kind, n) as (pid, requests, what):
            sink = Sink(self.port, requests, f"sink-{self.runs}")
            pub = client(self.port, f"pub-{self.runs}", inflight=1000)
            ready_mb = vm_mb(pid, "VmRSS")
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM from here: the workload's peak
            cpu0, sw0 = cpu_s(pid), switches(pid)
            by_thread = thread_names.cpu_by_thread(pid, TICK) if self.threads and kind == "serve" else None
            sent = publish_paced(pub, n, rate, what)
            t0 = min(sent.values())
            wait(lambda: len(sink.arrived) >= n, 900, f"{kind} {n} at {rate}/s")
            elapsed = max(sink.arrived.values()) - t0
            cpu1, sw1 = cpu_s(pid), switches(pid)
            if by_thread is not None:
                end = thread_names.cpu_by_thread(pid, TICK)
                by_thread = {k: v - by_thread.get(k, 0.0) for k, v in end.items()}
            peak_mb = vm_mb(pid, "VmHWM")
            pub.disconnect()
            pub.loop_stop()
            sink.close()
        ms = [(sink.arrived[k] - t) * 1000 for k, t in sent.items() if k in sink.arrived]
        return Figures(n, cpu1 - cpu0, sw1 - sw0, elapsed, ms, ready_mb, peak_mb, by_thread)


def signals_of(line: str) -> Callable[[int], tuple[str, str, int, str]]:
    """Signal i of a `serve`-shaped line: its bin sensor's topic, device, seq and the request's key."""
    topics = LineTopics("S1", line)
    return lambda i: (topics.device_signal(f"BS{i:05d}"), f"BS{i:05d}", 1, f"{line}/C{i:05d}")


def slow_disk_env(delay_ms: float, shim: Path) -> dict[str, str]:
    if not delay_ms:
        return dict(os.environ)
    return os.environ | {"LD_PRELOAD": str(shim), "BENCH_FSYNC_DELAY_US": str(int(delay_ms * 1000))}


def build_shim(tmp: Path) -> Path:
    shim = tmp / "slow_fsync.so"
    source = Path(__file__).with_name("slow_fsync.c")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"], check=True)
    return shim


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def report(what: str, mini: Figures, serve: Figures, burst: bool) -> None:
    cpu = ratio(serve.cpu_us, mini.cpu_us)
    line = (
        f"  {what:>6}  CPU/signal {serve.cpu_us:6.0f} vs {mini.cpu_us:5.0f} us ({cpu})"
        f"  wake-ups/signal {serve.wakeups:5.1f} vs {mini.wakeups:4.1f}"
    )
    if burst:
        line += (
            f"  ingest {serve.rate:6.0f} vs {mini.rate:6.0f}/s ({ratio(serve.rate, mini.rate)})"
            f"  serve RSS ready {serve.rss_ready_mb:.0f} MB, peak {serve.rss_peak_mb:.0f} MB"
            f" (minimal peak {mini.rss_peak_mb:.0f})"
        )
    else:
        p99 = ratio(serve.pct(0.99), mini.pct(0.99))
        line += (
            f"  p50 {serve.p50:5.2f} vs {mini.p50:5.2f} ms  p99 {serve.pct(0.99):6.2f} vs"
            f" {mini.pct(0.99):6.2f} ms ({p99})  max {serve.pct(1.0):6.1f} vs {mini.pct(1.0):6.1f} ms"
            f"  [{len(serve.ms)} samples]"
        )
    print(line, flush=True)


def report_one(what: str, kind: str, f: Figures) -> None:
    print(
        f"  {what:>6} {kind}: CPU/signal {f.cpu_us:.0f} us, wake-ups {f.wakeups:.1f},"
        f" p99 {f.pct(0.99):.2f} ms, max {f.pct(1.0):.1f} ms, {f.rate:.0f}/s,"
        f" RSS ready {f.rss_ready_mb:.0f} peak {f.rss_peak_mb:.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disks", default="0,0.5,2", help="extra ms per fsync, one profile each")
    parser.add_argument("--burst", type=int, default=20_000, help="signals of the burst (0: no burst)")
    parser.add_argument(
        "--cards",
        type=int,
        default=0,
        help="cards of `serve`'s line, 100 a loop (default: one a signal); e.g. 20000 for a 200-loop line",
    )
    parser.add_argument(
        "--rates",
        default="500:10000,50:2000,5:1000",
        help="paced workloads as RATE:SIGNALS; the slow rates run on the first disk only",
    )
    parser.add_argument("--pin", default="0", help="the core of both pipelines ('' for none)")
    parser.add_argument("--quick", action="store_true", help="burst 5,000, 500:3000, 50:500, 5:150")
    parser.add_argument("--kinds", default="minimal,serve")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="run each workload N times, the kinds' order reversed every other time; the targets read "
        "the median of the N same-run ratios (two quiet runs 20 min apart read serve's 500/s CPU 779 "
        "and 1,067 us: one run's ratio is not a verdict)",
    )  # fmt: skip
    parser.add_argument("--trace", action="store_true", help="run `serve` under bench/stall_trace.py")
    parser.add_argument("--threads", action="store_true", help="`serve`'s CPU a signal by thread name")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and logs (printed)")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a checkout of an older commit (`git archive COMMIT | tar -x -C DIR`): its `serve` runs too "
        "(`python -m` puts the working directory first on sys.path)",
    )
    args = parser.parse_args()
    if args.quick:
        args.burst, args.rates = 5000, "500:3000,50:500,5:150"
    rates = [(float(r), int(n)) for r, n in (x.split(":") for x in args.rates.split(",") if x)]
    kinds = args.kinds.split(",")
    if args.before:
        kinds.append("before")
    if args.pin and not shutil.which("taskset"):
        raise SystemExit("taskset missing (util-linux)")
    load = os.getloadavg()
    print(
        f"line-PC profile: pipelines pinned to core {args.pin or '-'}; {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} / {load[1]:.1f} at start ({time.strftime('%H:%M UTC', time.gmtime())})"
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(tempfile.mkdtemp(prefix="line-pc-")) if args.keep else Path(d)
        shim = build_shim(tmp)
        mosq = Mosquitto(tmp / "broker").start()
        results: dict[tuple[float, str], list[dict[str, Figures]]] = {}
        try:
            for i, disk in enumerate(float(x) for x in args.disks.split(",")):
                label = "this VM's disk" if not disk else f"+{disk:g} ms per fsync"
                print(f"disk: {label}")
                bench = Bench(
                    mosq.port, tmp / f"disk{i}", args.pin, slow_disk_env(disk, shim), args.trace, args.before,
                    args.cards,
                )  # fmt: skip
                bench.threads = args.threads
                workloads: list[tuple[str, int, float | None]] = []
                if args.burst:
                    workloads.append(("burst", args.burst, None))
                workloads += [(f"{r:g}/s", n, r) for r, n in rates if i == 0 or r >= 500]
                for (what, n, rate), rep in itertools.product(workloads, range(args.repeat)):
                    order = kinds if rep % 2 == 0 else kinds[::-1]
                    figures = {k: bench.run(k, n, rate) for k in order}
                    results.setdefault((disk, what), []).append(figures)
                    label = what if args.repeat == 1 else f"{what} #{rep + 1}"
                    if "minimal" in kinds and "serve" in kinds:
                        report(label, figures["minimal"], figures["serve"], rate is None)
                        if "before" in figures:
                            report(f"{label} (before)", figures["minimal"], figures["before"], rate is None)
                        if "samework" in figures:
                            same_work_report.line(label, figures, rate is None)
                    else:
                        for k in kinds:
                            report_one(label, k, figures[k])
                    if "serve" in figures:
                        same_work_report.threads(label, figures["serve"])
        finally:
            mosq.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if "minimal" in kinds and "serve" in kinds:
        print_targets(results)
    if "samework" in kinds and "minimal" in kinds and "serve" in kinds:
        same_work_report.table({key: runs[0] for key, runs in results.items()})


def print_targets(results: dict[tuple[float, str], list[dict[str, Figures]]]) -> None:
    """Issue 19's targets, each against the same run's minimal pipeline (the median over `--repeat`)."""
    print("targets (issue 19), serve against the minimal pipeline of the same run:")

    def check(name: str, values: list[float], limit: float, unit: str, at_most: bool = True) -> None:
        value = statistics.median(values)
        ok = value <= limit if at_most else value >= limit
        sign = "<=" if at_most else ">="
        each = "" if len(values) == 1 else f" (median of {', '.join(f'{v:.2f}' for v in values)})"
        print(f"  {'MET ' if ok else 'MISS'} {name}: {value:.2f}{unit}{each} (target {sign} {limit:g}{unit})")

    for (disk, what), runs in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        pairs = [(f["serve"], f["minimal"]) for f in runs]
        where = f"{what}, {'this disk' if not disk else f'+{disk:g} ms/fsync'}"
        if what == "burst":
            if not disk:
                check(f"CPU/signal, {where}", [s.cpu_us / m.cpu_us for s, m in pairs], 1.5, "x")
                check("serve RSS when ready", [s.rss_ready_mb for s, _ in pairs], 64, " MB")
                check(
                    f"serve peak RSS, {where} of {pairs[0][0].signals}",
                    [s.rss_peak_mb for s, _ in pairs],
                    100,
                    " MB",
                )
            else:
                check(f"ingest, {where}", [s.rate / m.rate for s, m in pairs], 2, "x", at_most=False)
            continue
        if what in ("5/s", "500/s") and not disk:
            check(f"CPU/signal, {where}", [s.cpu_us / m.cpu_us for s, m in pairs], 2, "x")
            check(
                f"p99, {where} ({len(pairs[0][0].ms)} samples)",
                [s.pct(0.99) / m.pct(0.99) for s, m in pairs],
                2,
                "x",
            )
        minimal_max = ", ".join(f"{m.pct(1.0):.1f}" for _, m in pairs)
        check(
            f"longest wait (max latency), {where} (minimal {minimal_max} ms)",
            [s.pct(1.0) for s, _ in pairs],
            20,
            " ms",
        )


if __name__ == "__main__":
    main()
