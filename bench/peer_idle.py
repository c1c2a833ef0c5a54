"""What an idle supermarket peer costs: wake-ups and CPU a second, per thread, now and before.

    python bench/peer_idle.py                               # this tree's peer, 20 s after 5 s
    git archive main | tar -x -C /tmp/before && python bench/peer_idle.py --before /tmp/before
    python bench/peer_idle.py --before /tmp/before --rate 20  # 20 requests a second in the window

Each peer (`python -m kanban_terminal.runtime upstream --instance X`, through this file's `--named`
wrapper so every Python thread carries its name into /proc) runs on one broker with claims on, after
answering `--requests` requests (so its file holds answers and claims, as a peer that has worked
does), and receives nothing over the window (with `--rate R`, R requests a second, paced, and
every figure also per request). The figures are /proc counts (bench/idle_wakeups.py):
context switches and utime+stime of every thread, over the window. Both peers run in the same
invocation, one after the other, so a busy box disturbs both alike; wake-ups depend little on load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """
[site]
id = "S1"
[line]
id = "L1"
[terminal]
id = "L1-T1"
require_check_character = false
[[stations]]
id = "ST1"
[[sources]]
id = "SM1"
kind = "supermarket"
[[parts]]
number = "P-1"
[[loops]]
id = "LP0"
part = "P-1"
station = "ST1"
point_of_use = "rack"
source = "SM1"
container_quantity = 10
lead_time_minutes = 60
card_ids = ["C00001"]
[upstream]
accept_after_s = 0
pick_after_s = 0
ship_after_s = 0
transit_s = 0
"""


def requests(port: int, n: int, rate: float = 0.0) -> None:
    """`n` requests as a terminal sends them (QoS 1, every PUBACK waited for), `rate` a second."""
    import paho.mqtt.client as mqtt

    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-terminal", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port, 5)
    client.loop_start()
    infos, t0 = [], time.monotonic()
    for k in range(n):
        body = {
            "v": 1, "id": str(uuid.uuid4()), "site": "S1", "line": "L1", "terminal": "L1-T1", "loop": "LP0",
            "loop_seq": k + 1, "card": "C00001", "part": "P-1", "quantity": 10, "station": "ST1",
            "point_of_use": "rack", "source": "SM1", "raised_at": at, "due_at": at, "attempt": 1,
        }  # fmt: skip
        infos.append(client.publish("kanban/v1/S1/L1/requests", json.dumps(body).encode(), qos=1))
        if rate:
            time.sleep(max(0.0, t0 + (k + 1) / rate - time.monotonic()))  # pacing, not waiting
    for info in infos:
        info.wait_for_publish(timeout=10)
    client.disconnect()
    client.loop_stop()


def run_one(name: str, root: Path, port: int, tmp: Path, args: argparse.Namespace) -> None:
    from bench.idle_wakeups import measure

    config = tmp / f"{name}.toml"
    config.write_text(CONFIG)
    log = tmp / f"{name}.log"
    argv = [sys.executable, str(Path(__file__).resolve()), "--named", str(root), "upstream",
            "--config", str(config), "--data-dir", str(tmp / name), "--mqtt", f"mqtt://127.0.0.1:{port}",
            "--instance", name]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, cwd=root)
    try:
        deadline = time.monotonic() + 30
        while b"subscribed to" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"peer {name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        requests(port, args.requests)
        n = int(args.rate * args.seconds)
        load = (lambda: requests(port, n, args.rate)) if n else None
        wake, cpu_ms, threads = measure(proc.pid, args.settle, args.seconds, load)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    per = f"; per request {wake / args.rate:.2f} wake-ups, {cpu_ms / args.rate * 1000:.0f} us" if n else ""
    print(f"  {name} ({root}): {wake:.2f} wake-ups/s, {cpu_ms:.2f} ms CPU/s{per}", flush=True)
    for thread, (w, c) in sorted(threads.items(), key=lambda kv: -kv[1][0]):
        if w or c:
            print(f"      {thread:<24} {w:6.2f} wake-ups/s  {c * 1000:6.2f} ms CPU/s")


def main() -> None:
    from tests.support.mosquitto import Mosquitto

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=50, help="answered before the window")
    parser.add_argument("--rate", type=float, default=0.0, help="requests a second in the window")
    parser.add_argument("--before", type=Path, default=None, help="a checkout of an older commit")
    args = parser.parse_args()
    print(
        f"idle peer over {args.seconds:g} s after {args.settle:g} s, load average "
        f"{os.getloadavg()[0]:.1f} at {time.strftime('%H:%M UTC', time.gmtime())}"
    )
    peers = ([("before", args.before.resolve())] if args.before else []) + [("now", ROOT)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mosq = Mosquitto(tmp / "broker").start()
        try:
            for name, root in peers:
                run_one(name, root, mosq.port, tmp, args)
        finally:
            mosq.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--named"]:
        sys.path.insert(0, sys.argv[2])  # the peer of that tree, not of this one
        from bench.idle_wakeups import name_threads

        name_threads()
        from kanban_terminal.runtime.serve import main as serve_main

        raise SystemExit(serve_main(sys.argv[3:]))
    main()
