"""CPU a signal by section of `serve`'s publish path (paho's loop, the drain hook, the relay, the link).

    python bench/section_cpu.py --rate 5 --signals 300 [--before DIR]

Runs `serve` as bench/line_pc.py does (own process pinned to core 0, a 20,000-card line, a real
mosquitto) through this file's `--wrap` mode, which times each listed function with
`time.thread_time_ns` (the calling thread's user + system CPU), and prints calls and us a signal per
section over the paced signals, then context switches a signal per thread (voluntary `:v`,
involuntary `:i`). Sections nest: `paho._loop` holds `paho.loop_read`, the drain hook holds the group.
With `--before DIR` the same wrapper runs DIR's code (it puts the working directory, DIR, first).

A diagnostic for the bench only (issue 19, branch publishpath): every section costs two clock
syscalls (~60 a signal), so read the figures as shares and differences, not as `serve`'s own CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PAHO = (
    "_loop",
    "loop_read",
    "loop_write",
    "loop_misc",
    "publish",
    "ack",
    "_handle_publish",
    "_handle_pubackcomp",
)
RELAY = (
    "publish_fresh",
    "join_group",
    "marked",
    "on_published",
    "_step",
    "take_acked",
    "mark_in",
    "_publish_row",
)
LINK = ("_handle_publish", "_handle_message", "ack", "publish")


def wrap_serve(argv: list[str]) -> int:
    """`serve` with section counters, dumped to $SECTION_OUT every second (as a module's main)."""
    import ctypes

    sys.path.insert(0, os.getcwd())  # the checkout being measured (pipeline_proc runs it there)
    stats: dict[str, list[int]] = {}
    clock = time.thread_time_ns

    def wrap(owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            t0 = clock()
            try:
                return fn(*a, **k)
            finally:
                s = stats.setdefault(label, [0, 0])
                s[0] += 1
                s[1] += clock() - t0

        setattr(owner, name, timed)

    libc = ctypes.CDLL(None)
    run = threading.Thread.run

    def named(self: threading.Thread, *a: Any, **k: Any) -> None:
        libc.prctl(15, self.name.encode()[:15], 0, 0, 0)  # PR_SET_NAME: per-thread switches by name
        run(self, *a, **k)

    threading.Thread.run = named  # type: ignore[method-assign]
    import select

    import paho.mqtt.client as mqtt

    from kanban_terminal.adapters import mqtt_client
    from kanban_terminal.runtime import inbound
    from kanban_terminal.services import relay
    from kanban_terminal.storage import outbox

    for n in PAHO:
        wrap(mqtt.Client, n, f"paho.{n}")
    for n in ("drain", "_handle", "on_message"):
        wrap(inbound.InboundWorker, n, f"InboundWorker.{n}")
    for n in RELAY:
        wrap(relay.Relay, n, f"Relay.{n}")
    for n in LINK:
        wrap(mqtt_client.MqttLink, n, f"MqttLink.{n}")
    for n in ("fresh", "acknowledged", "mark_published", "cards_sent"):
        wrap(outbox.OutboxWrites, n, f"OutboxWrites.{n}")
    if hasattr(relay, "request_payload"):  # before branch publishpath
        wrap(relay, "request_payload", "request message")
    else:
        from kanban_terminal.services import request_message

        wrap(request_message.RequestMessages, "payload", "request message")
    wrap(select, "select", "select()")
    out = os.environ["SECTION_OUT"]

    def dump() -> None:
        while True:
            time.sleep(1)
            Path(out + ".tmp").write_text(json.dumps(stats))
            os.replace(out + ".tmp", out)

    threading.Thread(target=dump, name="section-dump", daemon=True).start()
    from kanban_terminal.runtime import serve

    return serve.main(argv)


def switches(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            for line in (task / "status").read_text().splitlines():
                if "ctxt_switches" in line:
                    key = f"{name}:{'v' if line.startswith('voluntary') else 'i'}"
                    out[key] = out.get(key, 0) + int(line.split()[1])
        except OSError:
            continue  # a thread that ended
    return out


def measure(kind: str, root: Path, rate: float, n: int, tmp: Path, port: int) -> None:
    from bench import line_pc, pipeline_proc
    from bench.fleet import Sink
    from bench.mqtt_pipeline import client, publish_paced, wait
    from kanban_terminal.topics import LineTopics

    out = tmp / f"{kind}.json"
    env = dict(os.environ, SECTION_OUT=str(out))
    with pipeline_proc.serving(
        port, tmp / kind, max(n, 20_000), f"SC{kind}", prefix=("taskset", "-c", "0"), env=env,
        argv=(str(Path(__file__).resolve()), "--wrap"), existing=True, root=root,
    ) as proc:  # fmt: skip
        what = line_pc.signals_of(f"SC{kind}")
        sink = Sink(port, LineTopics("S1", f"SC{kind}").requests, f"sink-{kind}")
        pub = client(port, f"pub-{kind}", inflight=1000)
        time.sleep(3)
        s0, x0, c0 = json.loads(out.read_text()), switches(proc.pid), line_pc.cpu_s(proc.pid)
        publish_paced(pub, n, rate, what)
        wait(lambda: len(sink.arrived) >= n, 900, f"{kind} {n} at {rate}/s")
        time.sleep(2.5)  # one more dump of the counters
        s1, x1, c1 = json.loads(out.read_text()), switches(proc.pid), line_pc.cpu_s(proc.pid)
        pub.disconnect()
        pub.loop_stop()
        sink.close()
    print(f"{kind} ({root}): process CPU {1e6 * (c1 - c0) / n:.0f} us a signal (10 ms ticks)")

    def delta(k: str, i: int) -> int:
        return int(s1[k][i] - s0.get(k, [0, 0])[i])

    for k in sorted(s1, key=lambda k: -delta(k, 1)):
        if delta(k, 0):
            print(f"  {k:28s} calls {delta(k, 0) / n:6.2f}  us {delta(k, 1) / n / 1000:8.1f} a signal")
    moved = {k: round((v - x0.get(k, 0)) / n, 2) for k, v in sorted(x1.items()) if v - x0.get(k, 0)}
    print(f"  context switches a signal by thread: {moved}")


def main() -> None:
    if sys.argv[1:2] == ["--wrap"]:
        raise SystemExit(wrap_serve(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--signals", type=int, default=300)
    parser.add_argument("--before", type=Path, default=None, help="another checkout, measured after this one")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.support.mosquitto import Mosquitto

    runs: list[tuple[str, Path]] = [("now", ROOT)] + ([("before", args.before)] if args.before else [])
    with tempfile.TemporaryDirectory() as d:
        mosq = Mosquitto(Path(d) / "broker").start()
        try:
            for kind, root in runs:
                measure(kind, root, args.rate, args.signals, Path(d), mosq.port)
        finally:
            mosq.stop()


if __name__ == "__main__":
    main()
