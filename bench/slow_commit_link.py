"""What a disk that stalls every commit costs the MQTT link, with and without the keepalive guard.

    python bench/slow_commit_link.py [--signals 12] [--keepalive 2] [--stall 4] [--every 1]
    python bench/slow_commit_link.py --ack-cost

Every inbound group that writes stalls `--stall` seconds inside its unit of work, where a commit's
fsync on a worn eMMC or SD card would (injected in-process, as tests/integration/
test_inbound_keepalive.py does: bench/slow_fsync.c would also slow mosquitto's persistence and the
start-up's own commits by as much). One signal arrives every `--every` seconds. Two runs in the same
process, each on a fresh broker and database: "before", the inbound worker without its keepalive
guard (every group on paho's thread, as before runtime/keepalive_guard.py), and "now". Printed:
link drops (connections the broker accepted, minus one), redeliveries the dedupe keys absorbed,
requests raised (must be one per signal), which thread committed each group, and the wall time
until every signal was applied and the link was up with nothing waiting. Counts, not speeds: the
load on the box does not move them.

`--ack-cost`: nanoseconds a PUBACK spends in the ack gate (runtime check and lock,
adapters/mqtt_acks.py) against the compare it replaced, same process, paho's queue stubbed out.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
import timeit
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mqtt_pipeline import client, wait  # noqa: E402
from kanban_terminal.adapters.mqtt_acks import AckGate  # noqa: E402
from kanban_terminal.runtime import RuntimeOptions, TerminalServices  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.storage.scan_repo import ScanStore  # noqa: E402
from tests.faults.support import signal_payload  # noqa: E402
from tests.support.mosquitto import running_mosquitto  # noqa: E402
from tests.support.mqtt_lines import make_config, settings_for  # noqa: E402


def stalling_flush(stall_s: float, stalls: list[str]) -> None:
    """Every flush with rows to write, on an inbound thread, waits `stall_s` first (a slow fsync)."""
    real = ScanStore.flush

    def flush(store: ScanStore) -> None:
        name = threading.current_thread().name
        writes = store._closes or store._requests or store.log.rows or store._card_writes or store._seqs
        if writes and (name.startswith("paho-mqtt-client") or name == "mqtt-inbound"):
            stalls.append(name)
            time.sleep(stall_s)
        real(store)

    ScanStore.flush = flush  # type: ignore[method-assign,assignment]


def run(guarded: bool, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    config, _ = make_config(tmp, loops=1, cards=args.signals, sensors=args.signals)
    terminal = Terminal.open(config, tmp / "data")
    threads: list[str] = []
    options = RuntimeOptions(after_group_commit=lambda _n: threads.append(threading.current_thread().name))
    with (
        running_mosquitto(tmp / "broker") as broker,
        TerminalServices(terminal, settings_for(broker.port, keepalive_s=args.keepalive), options) as svc,
    ):
        link = svc.link
        assert link is not None
        wait(svc.subscribed, 20, "link up")
        if not guarded:
            svc.inbound.guard = None  # every group on paho's thread, as before the guard
        pub = client(broker.port, f"bench-pub-{guarded}")
        t0 = time.monotonic()
        for n in range(1, args.signals + 1):
            topic, payload = signal_payload(f"BS{n:05d}", 1, "empty", datetime.now(UTC))
            pub.publish(topic, payload, qos=1)
            time.sleep(args.every)
        con = sqlite3.connect(terminal.db.path)
        try:
            wait(
                lambda: (
                    con.execute("SELECT count(*) FROM replenishment_request").fetchone()[0] >= args.signals
                    and svc.subscribed()
                    and svc.inbound.waiting == 0
                ),
                600,
                "every signal applied",
            )
            elapsed = time.monotonic() - t0
            requests = con.execute(
                "SELECT count(*), count(DISTINCT card_id) FROM replenishment_request"
            ).fetchone()
        finally:
            con.close()
            pub.disconnect()
            pub.loop_stop()
        log = (broker.home / "mosquitto.log").read_text(errors="replace")
        return {
            "link drops": link.generation - 1,
            "broker timeouts": log.count(f"Client {link.client_id} has exceeded timeout"),
            "closed by the terminal": log.count(f"Client {link.client_id} closed its connection"),
            "redeliveries absorbed": svc.signals_duplicate,
            "requests (distinct cards)": f"{requests[0]} ({requests[1]})",
            "groups on paho / worker": "{} / {}".format(
                sum(t.startswith("paho") for t in threads), Counter(threads)["mqtt-inbound"]
            ),
            "all applied after, s": f"{elapsed:.1f}",
        }


def ack_cost() -> None:
    class Queue:  # paho's client.ack, stubbed: only the gate's own cost is measured
        def ack(self, mid: int, qos: int) -> int:
            return 0

    q, gate, generation = Queue(), AckGate(), 1
    gate.connected()

    def before(mid: int, qos: int, gen: int | None) -> None:  # the compare it replaced (77835eb)
        if qos > 0 and (gen is None or gen == generation):
            q.ack(mid, qos)

    n = 1_000_000
    for _ in range(2):  # interleaved, best of each
        old = min(timeit.repeat(lambda: before(7, 1, 1), number=n, repeat=5)) / n * 1e9
        new = min(timeit.repeat(lambda: gate.ack(q, 7, 1, 1), number=n, repeat=5)) / n * 1e9  # type: ignore[arg-type]
        print(f"ack: gate {new:.0f} ns, compare before {old:.0f} ns ({new / old:.2f}x, +{new - old:.0f} ns)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signals", type=int, default=12)
    parser.add_argument("--keepalive", type=int, default=2)
    parser.add_argument("--stall", type=float, default=4.0, help="seconds each writing group stalls")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between signals")
    parser.add_argument("--ack-cost", action="store_true")
    args = parser.parse_args()
    if args.ack_cost:
        ack_cost()
        return
    stalls: list[str] = []
    stalling_flush(args.stall, stalls)
    print(
        f"keepalive {args.keepalive} s (broker drops after 1.5x = {1.5 * args.keepalive:g} s of silence), "
        f"every writing group stalls {args.stall:g} s, {args.signals} signals one every {args.every:g} s"
    )
    results = {}
    for guarded in (False, True):
        with tempfile.TemporaryDirectory(prefix="bench-slow-commit-") as tmp:
            stalls.clear()
            results[guarded] = run(guarded, args, Path(tmp)) | {"stalled flushes": len(stalls)}
    print(f"{'':28} {'before (no guard)':>20} {'now':>20}")
    for key in results[True]:
        print(f"{key:28} {results[False][key]!s:>20} {results[True][key]!s:>20}")


if __name__ == "__main__":
    main()
