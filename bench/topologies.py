"""How many terminals and requests per second one mosquitto holds, alone and as a bridged pair.

    python bench/topologies.py [--terminals 100,500] [--seconds 20] [--bridges 3.1.1,5]

For each fleet size: N simulated terminals (bench/fleet.py worker processes, one request per
second each) through (a) one mosquitto with the plant config, the supermarket peer on it, and
(b) a line broker bridged (the shipped deploy/mosquitto/line/ file, site-wide topic) to a plant
broker with the peer, all measured in the same run. Printed per row: raised, lost (the peer has
fewer), doubled (duplicates the peer saw), gaps, p50/p99 scan -> request at the peer's broker (ms),
and the CPU note of mqtt_pipeline.scale. Figures from a shared 2-core box: compare rows of one run.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mqtt_pipeline import scale  # noqa: E402
from tests.support.bridged import BridgedPair  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", default="100,500")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--bridges", default="3.1.1,5", help="bridge protocols to run besides single")
    parser.add_argument("--per-process", type=int, default=25, help="terminals per worker process")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print("topology           terminals raised  lost  dup  gaps   p50 ms   p99 ms  note")
    for n in (int(x) for x in args.terminals.split(",")):
        for topology in ["single", *(f"bridged-{b}" for b in args.bridges.split(",") if b)]:
            with tempfile.TemporaryDirectory() as d:
                tmp = Path(d)
                if topology == "single":
                    broker = Mosquitto(tmp / "broker").start()
                    try:
                        row = scale(broker.port, tmp, n, args.seconds, args.per_process)
                    finally:
                        broker.stop()
                else:
                    pair = BridgedPair(tmp / "brokers", topology.split("-")[1], topic="kanban/v1/S1/# both 1")
                    try:
                        row = scale(pair.line.port, tmp, n, args.seconds, args.per_process, pair.plant.port)
                    finally:
                        pair.close()
            raised, lost, dups, gaps, p50, p99, note = row
            print(
                f"{topology:18} {n:9} {raised:6} {lost:5} {dups:4} {gaps:5} {p50:8.2f} {p99:8.2f}  {note}",
                flush=True,
            )


if __name__ == "__main__":
    main()
