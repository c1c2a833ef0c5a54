"""The full soak of the fault suite, as one command; prints the figures for docs/RELIABILITY.md.

    python -m tests.faults.soak              # everything, full sizes (about 10-15 minutes here)
    python -m tests.faults.soak --quick      # the same experiments at CI sizes (about 1-2 minutes)
    python -m tests.faults.soak --only crash,fiu

Every experiment reuses the CI test's code with bigger numbers and the same reconciliation, so the
soak cannot pass by checking less. Needs root (tmpfs, mosquitto user) and
`apt-get install -y mosquitto fiu-utils faketime strace openssl`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.faults import support
from tests.faults.test_broker_outage import run_outage
from tests.faults.test_crash import reconcile, run_crash_burst
from tests.faults.test_kill_after_commit import run_kills_after_commit
from tests.faults.test_serial_faults import CI_REPLUGS, SOAK_REPLUGS, run_replugs
from tests.faults.test_storage_faults import run_fiu_scans
from tests.support.audit import AuditSubscriber
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

TOPICS = LineTopics("S1", "L1")


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def crash(tmp: Path, quick: bool) -> dict[str, object]:
    # Full form: 1,100 events/s offered, a tenth of them scans (one scanner process, one fsync per
    # scan, queueing behind the signal groups' commits: it gets ~40-70/s) and the rest bin signals,
    # so that what is really taken in during the kills stays above R1's 1,000/s.
    kills, rate, share = (5, 200, 0.5) if quick else (20, 1100, 0.1)
    start = time.monotonic()
    result = run_crash_burst(tmp, kills=kills, rate=rate, seed=20261123, scan_share=share, catch_up_s=600)
    figures: dict[str, object] = dict(reconcile(result))
    # Scans the scanner reported during the kill windows / time it was running (signals keep
    # arriving during restarts, so they are counted over the whole run instead).
    figures["scans_reported_per_s"] = round(len(result["reported"]) / result["burst_s"])  # type: ignore[arg-type,operator]
    figures["signals_published_per_s"] = round(result["signals"] / result["publish_s"])  # type: ignore[operator]
    figures |= {"kills": kills, "offered_rate_per_s": rate, "offered_scan_share": share,
                "integrity_ok": len(result["integrity"]),  # type: ignore[arg-type]
                "wall_s": round(time.monotonic() - start, 1)}  # fmt: skip
    return figures


def fiu(tmp: Path, quick: bool) -> dict[str, object]:
    return dict(run_fiu_scans(tmp, 500 if quick else 10_000))


def outage(tmp: Path, quick: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    for how in ("sigterm", "sigkill"):
        folder = tmp / how
        folder.mkdir()
        # 200 requests/min with the broker down 60 s (CI: 20/s, 6 s).
        secs, rate, n = (6, 20.0, 150) if quick else (60, 200 / 60, 300)
        out[how] = run_outage(folder, how=how, outage_s=secs, requests=n, rate=rate) | {"outage_s": secs}
    return out


class _Arrivals:
    """Receive time of each request id, for the live-latency figure (in-process, no JSON parsing
    beyond the id)."""

    def __init__(self, port: int):
        self.at: dict[str, float] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="latency", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPICS.requests, 1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "latency subscriber")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(ValueError, KeyError):
            self.at.setdefault(json.loads(msg.payload)["id"], time.monotonic())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


RAW_BASELINE_TOPIC = "soak/raw-baseline"


def _raw_paho_rate(port: int, n: int, window: int, audit: AuditSubscriber) -> float:
    """Same-run baseline for the drain: n QoS 1 publishes of a request-sized payload, `window` in
    flight like the relay, to a topic the audit also subscribes to, so the broker does the same work
    per message as in the drain (with the plant config, a database save per message queued for the
    audit's persistent session). Returns once the audit has them all, so none is left to compete."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-baseline", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(window)
    # TCP_NODELAY, as the terminal's link sets it.
    c.on_socket_open = lambda _c, _u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    try:
        wait_for(c.is_connected, 10, "raw paho baseline")
        had = audit.count(RAW_BASELINE_TOPIC)
        payload = b"x" * 400
        t0 = time.monotonic()
        infos = [c.publish(RAW_BASELINE_TOPIC, payload, 1) for _ in range(n)]
        for info in infos:
            info.wait_for_publish(600)
        rate = n / (time.monotonic() - t0)
    finally:
        c.disconnect()
        c.loop_stop()
    wait_for(lambda: audit.count(RAW_BASELINE_TOPIC) >= had + n, timeout=600, what="audit has the baseline")
    return rate


def backlog(tmp: Path, quick: bool) -> dict[str, object]:
    """A backlog raised with the broker down, then drained while live requests keep coming.

    Size: 2,000 with --quick, else env SOAK_BACKLOG (default 100,000, issue 7's size). The drain
    rate is shown next to raw paho QoS 1 to the same broker and audit, measured in the same run
    before the outage and after the drain (the box is shared, so absolute rates move between runs).
    Env SOAK_BROKER_EXTRA appends a line to the plant broker config (e.g. `autosave_on_changes
    false`) to see how much of the drain is the broker's.
    """
    n = 2_000 if quick else int(os.environ.get("SOAK_BACKLOG", "100000"))
    config, _ = make_config(tmp, loops=100, cards=n // 100 + 20, sensors=0)
    terminal = Terminal.open(config, tmp / "data")
    broker = Mosquitto(tmp / "broker", extra=os.environ.get("SOAK_BROKER_EXTRA", "")).start()
    # The audit's persistent session must exist before the backlog is published; then the broker
    # goes down (SIGTERM: persistence saves the session) and the backlog builds up in the outbox.
    audit = AuditSubscriber(broker.port, tmp / "audit.db", [TOPICS.requests, RAW_BASELINE_TOPIC]).start()
    n_raw = min(n, 5_000)
    raw_before = _raw_paho_rate(broker.port, n_raw, 200, audit)
    broker.stop()
    cards = [c for loop in config.loops for c in loop.card_id_list()]
    backlog_cards, live_cards = cards[:n], cards[n : n + 200]
    rss0 = _rss_kb()
    figures: dict[str, object] = {"backlog": n}
    try:
        with TerminalServices(terminal, settings_for(broker.port, republish_after_s=600)) as services:
            t0 = time.monotonic()
            raised = [
                record_scan(terminal, c, source="soak", intent=Intent.EMPTY).request_id for c in backlog_cards
            ]
            figures["raise_rate_per_s"] = round(n / (time.monotonic() - t0))
            broker.start()
            arrivals = _Arrivals(broker.port)
            drain_start = time.monotonic()
            live: dict[str, float] = {}
            halt = threading.Event()

            def live_traffic() -> None:
                for card in live_cards:
                    if halt.wait(0.1):
                        return
                    rid = record_scan(terminal, card, source="live", intent=Intent.EMPTY).request_id
                    live[rid] = time.monotonic()  # type: ignore[index]

            writer = threading.Thread(target=live_traffic, daemon=True)
            writer.start()
            rss_peak = 0
            deadline = time.monotonic() + max(900, n / 50)
            while services.link_state().unsent > 0 and time.monotonic() < deadline:
                rss_peak = max(rss_peak, _rss_kb())
                halt.wait(0.5)
            drain_s = time.monotonic() - drain_start
            halt.set()
            writer.join(timeout=10)
            wait_for(lambda: services.link_state().unsent == 0, timeout=120, what="drained")
            # The audit commits each message (one fsync each) and may trail the drain.
            expected, slow = n + len(live), max(120, n / 50)
            wait_for(lambda: audit.count(TOPICS.requests) >= expected, timeout=slow, what="audit has all")
            lat = sorted(arrivals.at[r] - t for r, t in live.items() if r in arrivals.at)
            ids = [d["id"] for _t, d, _dup in audit.messages(TOPICS.requests) if d]
            raw_after = _raw_paho_rate(broker.port, n_raw, 200, audit)
            figures |= {
                "drain_s": round(drain_s, 1),
                "drain_rate_per_s": round(n / drain_s),
                "raw_paho_per_s_before_after": [round(raw_before), round(raw_after)],
                "drain_vs_raw_paho": round(n / drain_s / ((raw_before + raw_after) / 2), 2),
                "live_within_1s": sum(1 for x in lat if x <= 1.0),
                "live_requests": len(live),
                "live_latency_p50_s": round(lat[len(lat) // 2], 3) if lat else None,
                "live_latency_p99_s": round(lat[int(len(lat) * 0.99) - 1], 3) if lat else None,
                "live_latency_max_s": round(lat[-1], 3) if lat else None,
                "rss_growth_mb": round((rss_peak - rss0) / 1024, 1),
                "audit_copies": len(ids),
                "lost": len((set(raised) | set(live)) - set(ids)),
                "distinct_at_audit": len(set(ids)),
            }
            arrivals.close()
    finally:
        audit.stop()
        broker.stop()
        terminal.close()
    return figures


def frozen(tmp: Path, quick: bool) -> dict[str, object]:
    config, _ = make_config(tmp, loops=1, cards=5, sensors=0)
    terminal = Terminal.open(config, tmp / "data")
    broker = Mosquitto(tmp / "broker").start()
    seen: list[float] = []
    try:
        with TerminalServices(terminal, settings_for(broker.port, keepalive_s=2)) as services:
            for _ in range(1 if quick else 5):
                wait_for(lambda: services.subscribed(), timeout=30)
                broker.freeze()
                t = time.monotonic()
                wait_for(lambda: services.link_state().state != "connected", timeout=30)
                seen.append(round(time.monotonic() - t, 2))
                broker.thaw()
    finally:
        broker.thaw()
        broker.stop()
        terminal.close()
    return {"keepalive_s": 2, "bound_s": 5, "offline_after_s": seen}


def bad_input(tmp: Path, quick: bool) -> dict[str, object]:
    per_class = 500 if quick else 10_000
    env = support.env() | {"KANBAN_FAULTS_PER_CLASS": str(per_class)}
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "3600",
                          "tests/faults/test_bad_input.py"], env=env, capture_output=True, text=True,
                         cwd=support.ROOT, timeout=3600)  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1]
    if run.returncode != 0:
        failures = [line for line in run.stdout.splitlines() if line.startswith(("FAILED", "E "))]
        raise AssertionError(f"{summary}: {' | '.join(failures)[:1500]}")
    return {"per_class": per_class, "result": summary, "wall_s": round(time.monotonic() - start)}


def redelivery(tmp: Path, quick: bool) -> dict[str, object]:
    """R7: killed between a group's commit and its acks, 2 (CI) / 10 times over 10,000 signals."""
    start = time.monotonic()
    signals, kills = (200, 2) if quick else (10_000, 10)
    figures: dict[str, object] = dict(run_kills_after_commit(tmp, signals=signals, kills=kills))
    return figures | {"wall_s": round(time.monotonic() - start, 1)}


def bridged(tmp: Path, quick: bool) -> dict[str, object]:
    """Issue 16: a line broker bridged to a plant broker, two peers, the link killed and frozen, a
    peer killed; both shipped bridge files, 60 (quick) / 900 requests each."""
    from tests.integration.test_bridged_topologies import run_bridged_faults

    loops, cards = (4, 15) if quick else (20, 45)
    out: dict[str, object] = {}
    for protocol in ("5", "3.1.1"):
        start = time.monotonic()
        figures = run_bridged_faults(tmp / protocol, protocol, loops=loops, cards=cards)
        out[f"bridge {protocol}"] = dict(figures) | {"wall_s": round(time.monotonic() - start, 1)}
    return out


def serial(tmp: Path, quick: bool) -> dict[str, object]:
    return run_replugs(tmp, CI_REPLUGS if quick else SOAK_REPLUGS)


EXPERIMENTS: dict[str, Callable[[Path, bool], dict[str, object]]] = {
    "crash": crash, "fiu": fiu, "outage": outage, "backlog": backlog, "frozen": frozen,
    "bad_input": bad_input, "serial": serial, "redelivery": redelivery, "bridged": bridged,
}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.soak")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(EXPERIMENTS))
    args = parser.parse_args()
    results: dict[str, object] = {}
    for name in args.only.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"kanban-soak-{name}-"))
        start = time.monotonic()
        try:
            results[name] = EXPERIMENTS[name](tmp, args.quick)
        except (Exception, pytest.fail.Exception, pytest.skip.Exception) as exc:  # report, go on
            results[name] = {"FAILED": f"{type(exc).__name__}: {str(exc)[:500]}"}
        print(
            json.dumps({name: results[name], "took_s": round(time.monotonic() - start, 1)}, default=str),
            flush=True,
        )
    failed = [n for n, r in results.items() if isinstance(r, dict) and "FAILED" in r]
    print(f"soak: {len(results) - len(failed)} passed, {len(failed)} failed {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(support.ROOT)
    raise SystemExit(main())
