"""MQTT pipeline benchmark: each figure of the terminal next to baselines measured in the same run.

    python bench/mqtt_pipeline.py [--signals 20000] [--backlog 10000] [--terminals 100]

Baselines: raw paho QoS 1 publish rate, raw sqlite3 two-row commits, and a minimal
one-commit-per-signal pipeline built from those two (subscribe -> commit -> publish, auto-ack).
Measured: ingest burst (signals -> durable state + outbox -> request on the upstream topic),
outbox drain after the broker comes back, bin-empty -> request latency at 5/s and 500/s, peak RSS,
and N terminals at 1 request/s each through one mosquitto to the supermarket peer.
Everything runs on loopback against a mosquitto started with the plant configuration.

Ingest and latency run the terminal as `serve` and the minimal baseline each in a process of its
own (bench/pipeline_proc.py), as a plant runs them; this process plays the devices and upstream.
The drain runs the terminal's services in this process (it fills the outbox first).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402

from bench import pipeline_proc  # noqa: E402
from bench.fleet import Sink  # noqa: E402
from kanban_terminal.adapters.upstream import UpstreamPeer  # noqa: E402
from kanban_terminal.config import UpstreamSettings, parse_config  # noqa: E402
from kanban_terminal.runtime import TerminalServices, freeze_start_up_objects  # noqa: E402
from kanban_terminal.services.signals import BinSignal, SignalApplier  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.topics import LineTopics  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.mqtt_lines import line_config, settings_for  # noqa: E402

TOPICS = LineTopics("S1", "L1")


def wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.005)


def client(port: int, cid: str, inflight: int = 20) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(inflight)
    c.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    wait(c.is_connected, 10, "connect")
    return c


def signal_payload(device: str, seq: int) -> bytes:
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    d = {
        "v": 1,
        "id": f"{device}:b1:{seq}",  # the documented <device>:<boot>:<seq> (docs/schema)
        "device": device,
        "boot": "b1",
        "seq": seq,
        "type": "bin_empty",
        "at": at,
    }
    return json.dumps(d).encode()


# -- baselines --------------------------------------------------------------------------------------


def raw_paho(port: int, n: int) -> float:
    c = client(port, "raw-pub")
    payload = b"x" * 200
    t0 = time.perf_counter()
    infos = [c.publish("bench/raw", payload, 1) for _ in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    rate = n / (time.perf_counter() - t0)
    c.disconnect()
    c.loop_stop()
    return rate


def raw_sqlite(tmp: Path, n: int) -> float:
    con = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE s (k TEXT PRIMARY KEY, at TEXT)")
    con.execute("CREATE TABLE o (id INTEGER PRIMARY KEY, body TEXT, state TEXT)")
    t0 = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO s VALUES (?, ?)", (f"k{i}", "t"))
        con.execute("INSERT INTO o (body, state) VALUES (?, 'pending')", ("x" * 200,))
        con.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    con.close()
    return rate


def raw_commit_latency(tmp: Path, n: int = 200) -> tuple[float, float]:
    """p50/p99 ms of a one-row WAL+FULL commit, 5 ms apart: the fsync every pipeline waits for once
    per signal at a slow rate, measured in the same run (the shared disk's latency swings)."""
    con = sqlite3.connect(tmp / "commit-latency.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE s (k INTEGER PRIMARY KEY, v TEXT)")
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO s (v) VALUES ('x')")
        con.execute("COMMIT")
        ms.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    con.close()
    return p50_p99(sorted(ms))


def minimal_pipeline(port: int, tmp: Path, n: int, rate: float | None = None) -> tuple[float, list[float]]:
    """The baseline in its own process (`pipeline_proc.run_minimal`): subscribe, commit signal +
    outbox row, publish the request, one commit per signal.

    Returns the signals/s of the whole run and, per signal, the ms from publish to the request
    seen by a subscriber (meaningful when `rate` paces the publisher: the latency baseline).
    """
    tag = "burst" if rate is None else f"r{int(rate)}"
    prefix = f"bench/mini-{tag}"
    sink = Sink(port, f"{prefix}/requests", f"mini-sink-{tag}")
    with pipeline_proc.minimal(port, tmp / f"mini-{tag}.db", prefix):
        pub = client(port, f"mini-pub-{tag}", inflight=1000)
        sent = publish_paced(pub, n, rate, lambda i: (f"{prefix}/signals", f"D{i}", i, f"/D{i}"))
        t0 = min(sent.values())
        wait(lambda: sink.n >= n, 300, "minimal pipeline")
        elapsed = time.monotonic() - t0
        pub.disconnect()
        pub.loop_stop()
    ms = sorted((sink.arrived[k] - t) * 1000 for k, t in sent.items() if k in sink.arrived)
    sink.close()
    return n / elapsed, ms


def publish_paced(
    pub: mqtt.Client, n: int, rate: float | None, what: Callable[[int], tuple[str, str, int, str]]
) -> dict[str, float]:
    """Publish n signals (`what(i)` -> topic, device, seq, key), at `rate` a second or as fast as
    possible; returns when each key was sent."""
    sent: dict[str, float] = {}
    interval = 1 / rate if rate else 0.0
    next_at = time.perf_counter()
    for i in range(1, n + 1):
        if rate:
            while time.perf_counter() < next_at:
                time.sleep(max(0.0, min(0.001, next_at - time.perf_counter())))
            next_at += interval
        topic, device, seq, key = what(i)
        sent[key] = time.monotonic()  # the clock `Sink.arrived` uses
        pub.publish(topic, signal_payload(device, seq), 1)
    return sent


def p50_p99(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.99) - 1)]


# -- the terminal -----------------------------------------------------------------------------------


def big_terminal(tmp: Path, cards: int) -> Terminal:
    loops = (cards + 99) // 100
    cfg = parse_config(line_config(loops=loops, cards=100, sensors=cards))
    return Terminal.open(cfg, tmp)


def ingest_burst(port: int, tmp: Path, n: int) -> tuple[float, int, int, int]:
    """`serve` in its own process, fed n signals and then the first 1,000 again (QoS 1 redeliveries,
    device retries): signals/s until every request is on the upstream topic and every repeat absorbed."""
    home = tmp / "ingest"
    topics = LineTopics("S1", "LI")
    sink = Sink(port, topics.requests, "ingest-sink")
    with pipeline_proc.serving(port, home, n, "LI"):
        pub = client(port, "burst-pub", inflight=1000)
        device = lambda i: (topics.device_signal(f"BS{i:05d}"), f"BS{i:05d}", 1, f"BS{i:05d}")  # noqa: E731
        t0 = time.perf_counter()
        publish_paced(pub, n, None, device)
        publish_paced(pub, 1000, None, device)
        wait(
            lambda: len(sink.arrived) >= n and pipeline_proc.duplicates_absorbed(home) >= 1000, 600, "ingest"
        )
        elapsed = time.perf_counter() - t0
        requests = pipeline_proc.requests_stored(home)
        pub.disconnect()
        pub.loop_stop()
    sink.close()
    return n / elapsed, requests, pipeline_proc.duplicates_absorbed(home), len(sink.arrived)


def drain(mosq: Mosquitto, tmp: Path, n: int) -> float:
    terminal = big_terminal(tmp / "drain", n)
    applier = SignalApplier(terminal)
    # Raised during a 10-minute outage, as a real backlog is: raised "now", every row would count
    # as live (relay.LIVE_WITHIN) and the drain would measure the live path instead.
    now = datetime.now(UTC) - timedelta(minutes=10)
    for start in range(1, n + 1, 500):
        applier.apply(
            [
                BinSignal("x", f"BS{i:05d}", "b", 1, "empty", now + timedelta(seconds=i * 600 / n))
                for i in range(start, min(n, start + 499) + 1)
            ]
        )
    services = TerminalServices(terminal, settings_for(mosq.port))
    freeze_start_up_objects()  # as `serve` and the TUI do once started
    t0 = time.perf_counter()
    services.start()  # the broker "comes back": the link connects and the backlog drains
    relay = services.relay
    assert relay is not None
    # A cheap counter, polled: counting the outbox every 5 ms (`link_state()`, as the status bar does
    # once a second) took ~40 % of the process's samples during the drain (py-spy) and slowed it.
    wait(lambda: relay.published_total >= n, 600, "drain")
    rate = n / (time.perf_counter() - t0)
    unsent = services.link_state().unsent
    if unsent:
        raise RuntimeError(f"drain: {unsent} requests still unsent after {relay.published_total} PUBACKs")
    print(f"  drain: {relay.mark_batches} mark transactions, {n / relay.mark_batches:.0f} PUBACKs each")
    services.stop()
    terminal.close()
    return rate


def latency(port: int, tmp: Path, rate: float, count: int) -> tuple[float, float]:
    """Bin-empty published -> request seen on the upstream topic, with `serve` in its own process."""
    line = f"LT{int(rate)}"
    topics = LineTopics("S1", line)
    sink = Sink(port, topics.requests, f"lat-sink-{rate}")
    with pipeline_proc.serving(port, tmp / f"lat{int(rate)}", count, line):
        pub = client(port, f"lat-pub-{rate}")
        sent = publish_paced(
            pub,
            count,
            rate,
            lambda i: (topics.device_signal(f"BS{i:05d}"), f"BS{i:05d}", 1, f"{line}/C{i:05d}"),
        )
        wait(lambda: len(sink.arrived) >= count, 120, "latency")
        pub.disconnect()
        pub.loop_stop()
    sink.close()
    return p50_p99(sorted((sink.arrived[c] - t) * 1000 for c, t in sent.items()))


def _vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def terminal_rss(port: int, tmp: Path, n: int) -> tuple[float, float, float]:
    """Peak RSS (VmHWM) of the terminal alone: `serve` in its own process, fed an n-signal burst
    with an n-card configuration. Returns (peak MB during the burst, MB once started, peak MB of
    the start-up, which registers the n cards of a new data dir)."""
    topics = LineTopics("S1", "L9")
    sink = Sink(port, topics.requests, "rss-sink")
    with pipeline_proc.serving(port, tmp / "rss", n, "L9") as proc:
        after_start = _vm_kb(proc.pid, "VmRSS") / 1024
        start_peak = _vm_kb(proc.pid, "VmHWM") / 1024
        # Reset the high-water mark (Linux clear_refs 5) so VmHWM below is the burst's own peak:
        # start-up with n new cards peaks higher than the burst (registering them, catalog.py).
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
        pub = client(port, "rss-pub", inflight=1000)
        for i in range(1, n + 1):
            pub.publish(topics.device_signal(f"BS{i:05d}"), signal_payload(f"BS{i:05d}", 1), 1)
        wait(lambda: len(sink.arrived) >= n, 900, "rss burst")
        hwm = _vm_kb(proc.pid, "VmHWM") / 1024
        pub.disconnect()
        pub.loop_stop()
    sink.close()
    return hwm, after_start, start_peak


def scale(
    port: int,
    tmp: Path,
    terminals: int,
    seconds: float,
    per_process: int = 10,
    upstream_port: int | None = None,
) -> tuple[int, int, int, int, float, float, str]:
    """N terminals at one request per second each, through one mosquitto, to the supermarket peer.

    The terminals run `per_process` to a worker process (bench/fleet.py), as line PCs would: in one
    process, 100 terminals hold ~1,080 descriptors and paho's select() fails past 1024, so links
    never connected. The bench keeps the peer, an independent subscriber and the measurement.
    Latency: record_scan called (in a worker) -> request seen by the subscriber, on CLOCK_MONOTONIC.
    Returns raised, lost (the peer has fewer), duplicates, gaps, p50 and p99 ms, and a note.
    `upstream_port`: the peer and the subscriber on another broker (the plant side of a bridge,
    bench/topologies.py); the latency then includes the bridge.
    """
    import contextlib
    import os

    from bench.fleet import cpu_s, fd_usage, machine_busy, start_fleet

    fast = UpstreamSettings(accept_after_s=0, pick_after_s=0, ship_after_s=0, transit_s=0)
    up = upstream_port or port
    peer = UpstreamPeer(settings_for(up), "S1", fast, tmp / "peer.db").__enter__()
    sink = Sink(up, "kanban/v1/S1/+/requests", "scale-sink")
    wait(lambda: peer.link.subscribed, 10, "peer subscribed")
    t_up = time.monotonic()
    workers = start_fleet(port, tmp / "fleet", terminals, -(-terminals // per_process), int(seconds) + 5)
    try:
        ready = [w.expect("ready", 180) for w in workers]
        fleet_up = time.monotonic() - t_up
        go = time.monotonic() + 1.0
        for w in workers:
            w.tell({"go": go, "seconds": int(seconds), "total": terminals})
        time.sleep(max(0.0, go - time.monotonic()))
        busy0, bench0 = machine_busy(), cpu_s()
        done = [w.expect("done", seconds + 120) for w in workers]
        window = time.monotonic() - go
        busy1, bench_cpu = machine_busy(), cpu_s() - bench0
        sent: dict[str, float] = {k: t for d in done for k, t in d["sent"].items()}
        errors = [e for d in done for e in d["errors"]]
        raised = len(sent)
        # Not an exception: what did not arrive is the figure (lost), so wait a while, then count.
        with contextlib.suppress(TimeoutError):
            wait(lambda: peer.received >= raised, 120, "peer got all")
        with contextlib.suppress(TimeoutError):
            wait(lambda: all(k in sink.arrived for k in sent), 30, "sink got all")
    finally:
        for w in workers:
            w.finish()
        peer.__exit__(None, None, None)
        sink.close()
    ms = sorted((sink.arrived[k] - t) * 1000 for k, t in sent.items() if k in sink.arrived)
    p50, p99 = p50_p99(ms) if ms else (float("nan"), float("nan"))
    # CPU while scanning, in cores: the workers' and the bench's own, and the whole box's busy share
    # (mosquitto and anyone else on the machine included): a saturated box shows in the latency.
    fleet_cores = sum(d["cpu_s"] for d in done) / window
    box = (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1])
    note = (
        f"CPU while scanning: workers {fleet_cores:.2f} cores, bench {bench_cpu / window:.2f}, "
        f"box {box:.0%} busy ({os.cpu_count()} cores); "
        f"achieved {(raised - 1) / max(1e-9, max(sent.values()) - min(sent.values())):.0f} req/s, "
        f"scans up to {max(d['late_s'] for d in done) * 1000:.0f} ms late, "
        f"link reconnects {sum(d['reconnects'] for d in done)}; "
        f"{len(workers)} processes, fleet up in {fleet_up:.1f} s, max fd per worker "
        f"{max(r['max_fd'] for r in ready)} (bench {fd_usage()[1]}), "
        f"threads per worker {max(r['threads'] for r in ready)}; sink missed {raised - len(ms)}"
    )
    if errors:
        note += f"; {len(errors)} scans failed, first: {errors[0]}"
    return raised, raised - peer.received, peer.duplicates, peer.gaps, p50, p99, note


def ingest_figures(port: int, tmp: Path, n: int) -> None:
    print(f"raw paho QoS1 publish ({n}): {raw_paho(port, n):.0f} msg/s")
    print(f"raw sqlite3 2-row commits WAL+FULL: {raw_sqlite(tmp, n):.0f} tx/s")
    base, _ = minimal_pipeline(port, tmp, n)
    print(f"minimal one-commit-per-signal pipeline:    {base:8.0f} signals/s")
    rate, requests, dups, arrived = ingest_burst(port, tmp, n)
    print(
        f"terminal ingest burst ({n} + 1000 dups):  {rate:8.0f} signals/s "
        f"({rate / base:.2f}x baseline; requests={requests}, dups absorbed={dups}, upstream={arrived})"
    )
    print(f"peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def _run_on_slow_disk(delay_ms: float) -> None:
    """Re-run this bench with `bench/slow_fsync.c` preloaded, so every pipeline and every baseline of
    the run (all in this process) pays the same slower disk; mosquitto inherits it too."""
    if os.environ.get("BENCH_FSYNC_DELAY_US"):
        extra_ms = int(os.environ["BENCH_FSYNC_DELAY_US"]) / 1000
        print(f"disk: every fsync/fdatasync + {extra_ms:g} ms (LD_PRELOAD bench/slow_fsync.c)")
        return
    shim = Path(tempfile.mkdtemp(prefix="bench-fsync-")) / "slow_fsync.so"
    source = Path(__file__).with_name("slow_fsync.c")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"], check=True)
    env = os.environ | {"LD_PRELOAD": str(shim), "BENCH_FSYNC_DELAY_US": str(int(delay_ms * 1000))}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--scale-seconds", type=float, default=20)
    parser.add_argument(
        "--broker-extra",
        default="",
        help="a line appended to the plant mosquitto config, e.g. 'autosave_on_changes true' to see "
        "what the broker's save-per-change costs (every pipeline and baseline shares the broker)",
    )
    parser.add_argument(
        "--only",
        default="ingest,drain,latency,rss,scale",
        help="comma-separated subset of ingest,drain,latency,rss,scale (each with its own baselines)",
    )
    parser.add_argument(
        "--fsync-delay-ms",
        type=float,
        default=0.0,
        help="run the whole bench with every fsync/fdatasync taking this much longer (bench/slow_fsync.c "
        "via LD_PRELOAD): a line PC's eMMC/SD/consumer SSD needs ~1-20 ms where this VM needs ~0.2",
    )
    parser.add_argument(
        "--latency-samples",
        default="100,2000",
        help="signals of the latency figures at 5/s and at 500/s; the defaults flatter every "
        "pipeline (a p99 of 100 is the second-slowest), so compare changes with more, e.g. 500,10000",
    )
    args = parser.parse_args()
    slow_n, fast_n = (int(n) for n in args.latency_samples.split(","))
    if args.fsync_delay_ms:
        _run_on_slow_disk(args.fsync_delay_ms)
    only = set(args.only.split(","))
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mosq = Mosquitto(tmp / "broker", extra=args.broker_extra).start()
        print(f"broker: plant config (deploy/mosquitto/kanban-plant.conf) + {args.broker_extra!r}")
        try:
            if "ingest" in only:
                ingest_figures(mosq.port, tmp, args.signals)
            if "drain" in only:
                # The raw paho rate swung 8,500-15,900 msg/s from one run to the next on the dev box:
                # measured just before and just after the drain, and compared with their mean.
                paho_before = raw_paho(mosq.port, args.backlog)
                d_rate = drain(mosq, tmp, args.backlog)
                paho_after = raw_paho(mosq.port, args.backlog)
                paho_rate = (paho_before + paho_after) / 2
                print(
                    f"drain {args.backlog} backlog: {d_rate:.0f} req/s vs raw paho {paho_rate:.0f} "
                    f"(before {paho_before:.0f}, after {paho_after:.0f}) ({d_rate / paho_rate:.2f}x)"
                )
            if "latency" in only:
                c50, c99 = raw_commit_latency(tmp)
                print(f"raw sqlite3 one-row commit (the fsync floor): p50 {c50:.2f} ms  p99 {c99:.2f} ms")
            for r, n in ((5.0, slow_n), (500.0, fast_n)) if "latency" in only else ():
                b50, b99 = p50_p99(minimal_pipeline(mosq.port, tmp, n, rate=r)[1])
                p50, p99 = latency(mosq.port, tmp, r, n)
                print(
                    f"latency bin-empty -> request at {r:.0f}/s ({n}): p50 {p50:.2f} ms  p99 {p99:.2f} ms "
                    f"(minimal pipeline: p50 {b50:.2f} ms  p99 {b99:.2f} ms)"
                )
            if "rss" in only:
                hwm, after_start, start_peak = terminal_rss(mosq.port, tmp, args.signals)
                print(
                    f"terminal process (serve) peak RSS over a {args.signals}-signal burst: {hwm:.0f} MB "
                    f"(after start-up {after_start:.0f} MB; start-up peak, {args.signals} new cards "
                    f"registered: {start_peak:.0f} MB)"
                )
            if args.terminals and "scale" in only:
                raised, lost, dups, gaps, p50, p99, note = scale(
                    mosq.port, tmp, args.terminals, args.scale_seconds
                )
                print(
                    f"scale {args.terminals} terminals x 1 req/s {args.scale_seconds:.0f} s: raised {raised} "
                    f"lost {lost} dup {dups} gaps {gaps}; scan -> upstream p50 {p50:.2f} ms p99 {p99:.2f} ms "
                    f"({note})"
                )
            print(f"peak RSS (bench): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        finally:
            mosq.stop()


if __name__ == "__main__":
    main()
