"""Outbox drain benchmark (issue 3's drain target), each drain next to raw paho from the same round.

    python bench/relay_drain.py [--backlog 10000] [--rounds 2] [--audit]

A round is: raw paho QoS 1 publish rate (bench/mqtt_pipeline.py's baseline, same code), then an
N-request backlog built offline and drained when the link comes up, then raw paho again. The ratio
is drain / mean of the two raw figures, so a neighbour loading the box moves both sides. `--audit`
adds a persistent-session subscriber that commits every message to SQLite before acknowledging it
(tests/support/audit.py, as in the soak), so the broker also queues and persists for a consumer.
Prints the relay's PUBACK batches (one fsynced transaction each) to show where a drain goes.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mqtt_pipeline import TOPICS, big_terminal, raw_paho, wait  # noqa: E402
from kanban_terminal.runtime import TerminalServices  # noqa: E402
from kanban_terminal.services.signals import BinSignal, SignalApplier  # noqa: E402
from tests.support.audit import AuditSubscriber  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.mqtt_lines import settings_for  # noqa: E402


def drain(port: int, tmp: Path, n: int) -> tuple[float, int]:
    """Drain rate (req/s) of an n-request backlog, and how many PUBACK batches it took."""
    terminal = big_terminal(tmp, n)
    applier = SignalApplier(terminal)
    now = datetime.now(UTC)
    for start in range(1, n + 1, 500):
        stop = min(n, start + 499) + 1
        applier.apply([BinSignal("x", f"BS{i:05d}", "b", 1, "empty", now) for i in range(start, stop)])
    services = TerminalServices(terminal, settings_for(port))
    t0 = time.perf_counter()
    services.start()  # the broker "comes back": the link connects and the backlog drains
    try:
        wait(lambda: services.link_state().unsent == 0, 600, "drain")
        rate = n / (time.perf_counter() - t0)
        batches = getattr(services.relay, "mark_batches", 0)  # 0: a relay without the counter
    finally:
        services.stop()
        terminal.close()
    return rate, batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--audit", action="store_true", help="add a committing persistent subscriber")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        mosq = Mosquitto(tmp / "broker").start()
        audit = None
        if args.audit:
            audit = AuditSubscriber(mosq.port, tmp / "audit.db", [TOPICS.requests]).start()
        try:
            for r in range(args.rounds):
                before = raw_paho(mosq.port, args.backlog)
                rate, batches = drain(mosq.port, tmp / f"drain{r}", args.backlog)
                after = raw_paho(mosq.port, args.backlog)
                ratio = rate / ((before + after) / 2)
                ratios.append(ratio)
                print(
                    f"round {r + 1}: drain {args.backlog}: {rate:.0f} req/s in {batches} PUBACK batches "
                    f"({args.backlog / max(batches, 1):.0f}/batch); raw paho {before:.0f} / {after:.0f} "
                    f"msg/s; {ratio:.2f}x",
                    flush=True,
                )
        finally:
            if audit:
                audit.stop()
            mosq.stop()
    print(f"median drain / raw paho: {statistics.median(ratios):.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
