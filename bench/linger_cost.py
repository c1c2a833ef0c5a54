"""What the inbound linger saves and costs (issue 19, runtime/inbound_linger.py), linger values side
by side in one run.

    python bench/linger_cost.py                               # 1000/s, 500/s, 50/s, 5/s; 0, 3, 5 ms
    python bench/linger_cost.py --rates 500:3000 --lingers 0,2,3,5 --rounds 3

The real runtime runs in this process (a fresh `TerminalServices` per measurement, one data dir per
linger value), a real mosquitto, and the sensors in a child process that publishes QoS 1 signals
at a steady pace. Per rate and linger value:

* CPU a signal: this process's user+system time (getrusage, microseconds; every thread of the
  runtime, plus the main thread's 20 ms polls) from the first signal sent to the last one applied,
  divided by the signals;
* wake-ups a signal: this process's context switches over the same window;
* signals a group (committed transactions, the runtime's `after_group_commit` hook);
* p50 / p99 sent -> committed: the child stamps each send with CLOCK_MONOTONIC (shared by every
  process), the hook stamps each commit; signals commit in arrival order, so the i-th signal
  committed in the first group that brought `signals_applied` past i.

Linger values run interleaved (round by round, rate by rate), so the box's load falls on all of
them alike; a busy box still bunches signals by itself (fewer, larger groups for every value) and
the wall-clock figures move most. Read the ratios against linger 0 of the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kanban_terminal.runtime import RuntimeOptions, TerminalServices  # noqa: E402
from kanban_terminal.runtime.inbound_linger import Linger  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.mqtt_lines import make_config, settings_for, wait_for  # noqa: E402

SENSORS = 20


@dataclass
class Figures:
    cpu_us: list[float] = field(default_factory=list)
    switches: list[float] = field(default_factory=list)
    per_group: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)


def publish_child(port: int, n: int, rate: float, boot: str) -> None:
    """The sensors (child process): `n` signals at `rate`; prints each send's monotonic time."""
    from tests.support.paced_signals import line_signals, publish_paced

    sent: list[float] = []
    publish_paced(port, line_signals(n, SENSORS, boot), 1 / rate, client_id=f"sensors-{boot}", sent=sent)
    print(json.dumps(sent))


def measure(data: Path, port: int, linger_s: float, rate: float, n: int, boot: str, cards: int) -> Figures:
    commits: list[tuple[float, int]] = []
    holder: list[TerminalServices] = []

    def committed(_groups: int) -> None:
        commits.append((time.monotonic(), holder[0].inbound.signals_applied))

    loops, per_loop = (1, SENSORS) if cards <= SENSORS else (cards // 100, 100)
    terminal = Terminal.open(make_config(data.parent, loops=loops, cards=per_loop, sensors=SENSORS)[0], data)
    try:
        with TerminalServices(
            terminal, settings_for(port), RuntimeOptions(after_group_commit=committed)
        ) as services:
            holder.append(services)
            services.inbound.linger = Linger(linger_s)
            wait_for(lambda: services.subscribed(), what="link up")
            applied0 = services.inbound.signals_applied
            commits.clear()
            before = resource.getrusage(resource.RUSAGE_SELF)
            child = subprocess.run(
                [sys.executable, __file__, "--publish", f"{port}:{n}:{rate}:{boot}"],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )  # fmt: skip
            wait_for(lambda: services.inbound.signals_applied - applied0 >= n, timeout=120, what="applied")
            after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        terminal.close()
    sent = json.loads(child.stdout)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    switches = (after.ru_nvcsw + after.ru_nivcsw) - (before.ru_nvcsw + before.ru_nivcsw)
    latency, k = [], 0
    for i, at in enumerate(sent):
        while commits[k][1] - applied0 < i + 1:
            k += 1
        latency.append((commits[k][0] - at) * 1000)
    latency.sort()
    f = Figures()
    f.cpu_us.append(cpu / n * 1e6)
    f.switches.append(switches / n)
    f.per_group.append(n / max(1, len(commits)))
    f.latency_ms += latency
    return f


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="1000:3000,500:3000,50:500,5:100", help="RATE:SIGNALS,...")
    parser.add_argument("--lingers", default="0,3,5", help="linger values in ms (0: none)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--cards", type=int, default=SENSORS, help="cards of the line, 100 a loop (e.g. 20000)"
    )
    parser.add_argument("--publish", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        port, n, rate, boot = args.publish.split(":")
        publish_child(int(port), int(n), float(rate), boot)
        return
    rates = [(float(r), int(n)) for r, n in (x.split(":") for x in args.rates.split(","))]
    lingers = [float(x) / 1000 for x in args.lingers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="linger-cost-"))
    broker = Mosquitto(tmp / "broker").start()
    results: dict[tuple[float, float], Figures] = {}
    runs = 0
    try:
        for _round in range(args.rounds):
            for rate, n in rates:
                for linger_s in lingers:
                    runs += 1
                    data = tmp / f"linger-{linger_s * 1000:g}" / "data"
                    data.parent.mkdir(parents=True, exist_ok=True)
                    f = measure(data, broker.port, linger_s, rate, n, f"r{runs}", args.cards)
                    acc = results.setdefault((rate, linger_s), Figures())
                    for name in ("cpu_us", "switches", "per_group", "latency_ms"):
                        getattr(acc, name).extend(getattr(f, name))
    finally:
        broker.stop()
    with open("/proc/loadavg") as load:
        print(f"load average at the end: {load.read().split()[0]} (2 cores shared)")
    for rate, _n in rates:
        base = results[(rate, lingers[0])]
        for linger_s in lingers:
            f = results[(rate, linger_s)]
            lat = sorted(f.latency_ms)
            cpu = statistics.median(f.cpu_us)
            ratio = cpu / statistics.median(base.cpu_us)
            print(
                f"{rate:6g}/s linger {linger_s * 1000:3g} ms  CPU/signal {cpu:6.0f} us "
                f"({ratio:.2f}x)  wake-ups/signal {statistics.median(f.switches):4.1f}"
                f"  signals/group {statistics.median(f.per_group):5.2f}  sent->committed p50 "
                f"{statistics.median(lat):6.2f} ms p99 {lat[max(0, int(len(lat) * 0.99) - 1)]:7.2f} ms"
                f"  [{len(lat)} samples, {args.rounds} rounds]"
            )


if __name__ == "__main__":
    main()
