"""S8: does a flooding device slow the others down? Quiet-device latency with and without a flood.

The firmware bridge runs as its own process (`firmware-bridge run`) with two devices on ptys. The
quiet one presses its andon button N times at a line-like pace; each press is timed from the frame
written on the serial line to the signal arriving at an MQTT subscriber. Then the same again while
the noisy device, in a third process, writes garbage and valid frames to its port as fast as it can.
Goal (reliability.md S8): the quiet device's p99 with the flood <= 2x its p99 without, in the same run.

    python bench/device_flood.py [--presses 200] [--rate 10]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from firmware_bridge.simulator import DeviceSimulator  # noqa: E402
from kanban_terminal.topics import LineTopics  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402

TOPICS = LineTopics("plant1", "L1")

FLOODER = """
import sys, time
from pathlib import Path
from firmware_bridge.simulator import DeviceSimulator
device = DeviceSimulator("NOISY", link=Path(sys.argv[1]))
device.open()
print("ready", flush=True)
garbage = bytes(range(256)) * 16
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    device.send_raw(garbage)   # non-blocking pty: what the bridge cannot take is dropped
    device.heartbeat()         # valid frames at full speed too: the rate limit must cut them
device.stop()
"""


def bridge_config(folder: Path, port: int) -> Path:
    path = folder / "bridge.toml"
    path.write_text(
        f'site = "plant1"\nline = "L1"\nbridge_id = "bench"\nstate_dir = "{folder / "state"}"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[[devices]]\nid = "QUIET"\nport = "{folder / "ttyQUIET"}"\n'
        f'[[devices]]\nid = "NOISY"\nport = "{folder / "ttyNOISY"}"\n'
    )
    return path


class Arrivals:
    """MQTT subscriber on the quiet device's signal topic: arrival time per station label."""

    def __init__(self, port: int) -> None:
        self.at: dict[str, float] = {}
        self.ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="bench-flood", protocol=mqtt.MQTTv5
        )
        self.client.on_socket_open = lambda _c, _u, sock: sock.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
        )
        self.client.on_connect = lambda c, *_a: c.subscribe(TOPICS.device_signal("QUIET"), 1)
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 10)
        self.client.loop_start()
        self.ready.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        station = json.loads(msg.payload).get("station")
        if isinstance(station, str):
            self.at[station] = now

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_phase(
    quiet: DeviceSimulator, arrivals: Arrivals, label: str, presses: int, rate: float
) -> list[float]:
    sent: dict[str, float] = {}
    start = time.monotonic()
    for n in range(presses):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        station = f"{label}{n}"
        sent[station] = time.monotonic()
        quiet.press("call", station)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(s in arrivals.at for s in sent):
        time.sleep(0.05)
    lost = [s for s in sent if s not in arrivals.at]
    if lost:
        print(f"  {label}: {len(lost)} presses never arrived")
    return sorted((arrivals.at[s] - t) * 1000 for s, t in sent.items() if s in arrivals.at)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="quiet-device presses per second (limit 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder / "broker").start()
        quiet = DeviceSimulator("QUIET", link=folder / "ttyQUIET")
        quiet.open()
        quiet.hello()
        config = bridge_config(folder, broker.port)
        bridge = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridge.cli", "run", "--config", str(config)],
            cwd=ROOT, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        arrivals = Arrivals(broker.port)
        flooder = None
        try:
            # Until the bridge has opened the port and connected, presses are lost: press until one
            # arrives, then warm up.
            for n in range(300):
                quiet.press("call", f"UP{n}")
                time.sleep(0.1)
                if arrivals.at:
                    break
            else:
                print("the bridge never forwarded a press")
                return 1
            run_phase(quiet, arrivals, "W", 20, args.rate)
            base = run_phase(quiet, arrivals, "B", args.presses, args.rate)
            seconds = args.presses / args.rate + 30
            flooder = subprocess.Popen(
                [sys.executable, "-c", FLOODER, str(folder / "ttyNOISY"), str(seconds)],
                cwd=ROOT, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert flooder.stdout is not None
            flooder.stdout.readline()
            time.sleep(2)  # let the bridge open the noisy port and the flood reach full speed
            flood = run_phase(quiet, arrivals, "F", args.presses, args.rate)
        finally:
            if flooder is not None:
                flooder.kill()
            bridge.terminate()
            bridge.wait(10)
            arrivals.stop()
            quiet.stop()
            broker.stop()
    print(f"quiet device, {args.presses} presses at {args.rate:g}/s, frame on the serial line -> subscriber")
    print(f"  no flood:   p50 {pct(base, 0.5):6.2f} ms  p99 {pct(base, 0.99):6.2f} ms  ({len(base)} arrived)")
    print(
        f"  with flood: p50 {pct(flood, 0.5):6.2f} ms  p99 {pct(flood, 0.99):6.2f} ms  ({len(flood)} arrived)"
    )
    ratio = pct(flood, 0.99) / pct(base, 0.99)
    print(f"  p99 ratio flood / no flood: {ratio:.2f}x (goal <= 2x); mean {statistics.fmean(flood):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
