"""R5/R9: the broker goes away under traffic (SIGTERM, SIGKILL, SIGSTOP) and comes back.

Ground truth is the audit subscriber (its own process and persistent session on the requests
topic) and the upstream peer's own table. After the outage: every request raised reaches upstream,
none is doubled after dedupe by UUID, each has exactly one upstream answer applied, the outbox is
empty, and the status the terminal showed during the outage never said "connected" while the
broker was down.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.faults.support import TOPICS, query
from tests.support.audit import AuditSubscriber
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

pytestmark = pytest.mark.broker
KEEPALIVE_S = 2


@dataclass
class StatusLog:
    """Samples of the status the terminal shows, with what the broker really was."""

    samples: list[tuple[float, bool, str]] = field(default_factory=list)
    broker_up: bool = True
    changed_at: float = 0.0


def _sample(services: TerminalServices, log: StatusLog, halt: threading.Event) -> None:
    for _ in range(100_000):  # bounded; 10 samples a second
        if halt.wait(0.1):
            return
        log.samples.append((time.monotonic(), log.broker_up, services.link_state().state))


def run_outage(
    tmp_path: Path, *, how: str, outage_s: float, requests: int, rate: float, shared: bool = True
) -> dict[str, float]:
    """Raise `requests` at `rate`/s with the broker down `outage_s` in the middle; reconcile. `shared`:
    the peer takes the requests through a shared subscription (the default) or a plain one."""
    config, _ = make_config(tmp_path, loops=10, cards=max(20, requests // 10 + 1), sensors=0)
    terminal = Terminal.open(config, tmp_path / "data")
    broker = Mosquitto(tmp_path / "broker").start()
    audit = AuditSubscriber(broker.port, tmp_path / "audit.db", [TOPICS.requests]).start()
    fast = UpstreamSettings.model_validate(
        {"accept_after_s": 0, "pick_after_s": 3600, "ship_after_s": 3600, "transit_s": 60,
         "ownership": {"shared_subscription": shared}}
    )  # fmt: skip
    settings = settings_for(broker.port, keepalive_s=KEEPALIVE_S, republish_after_s=5)
    cards = [card for loop in config.loops for card in loop.card_id_list()][:requests]
    raised: list[str] = []
    status = StatusLog()
    halt = threading.Event()
    figures: dict[str, float] = {}
    try:
        with (
            UpstreamPeer(settings, "S1", fast, tmp_path / "peer.db") as peer,
            TerminalServices(terminal, settings) as services,
        ):
            wait_for(lambda: services.subscribed() and peer.link.subscribed)
            sampler = threading.Thread(target=_sample, args=(services, status, halt), daemon=True)
            sampler.start()
            down_at = len(cards) // 3
            up_after = time.monotonic()
            for n, card in enumerate(cards):
                if n == down_at:
                    status.broker_up, status.changed_at = False, time.monotonic()
                    if how == "sigkill":
                        broker.kill()
                    else:
                        broker.stop(signal.SIGTERM)
                    up_after = time.monotonic() + outage_s
                if not status.broker_up and time.monotonic() >= up_after:
                    broker.start()
                    status.broker_up, status.changed_at = True, time.monotonic()
                outcome = record_scan(terminal, card, source="test", intent=Intent.EMPTY)
                assert outcome.accepted, outcome
                raised.append(outcome.request_id)  # type: ignore[arg-type]
                halt.wait(1 / rate)  # pacing the load, not waiting for a condition
            if not status.broker_up:
                wait_for(lambda: time.monotonic() >= up_after, timeout=outage_s + 5, what="outage over")
                broker.start()
                status.broker_up, status.changed_at = True, time.monotonic()
            back = time.monotonic()
            wait_for(lambda: services.subscribed(), timeout=15, what="link back")
            figures["reconnect_s"] = time.monotonic() - back
            wait_for(lambda: services.link_state().queued == 0, timeout=60, what="every request answered")
            figures["drained_s"] = time.monotonic() - back
            halt.set()
            sampler.join(timeout=5)
            assert peer.count_requests() == len(raised)
            figures["peer_duplicates"] = peer.duplicates
            figures["peer_gaps"] = peer.gaps  # R11: a loop_seq out of order at upstream, per loop
            assert services.link.callback_errors == 0  # type: ignore[union-attr]
    finally:
        halt.set()
        audit.stop()
        broker.stop()
        terminal.close()
    # The audit saw every request; after dedupe by id, exactly the set raised. Not after a SIGKILL:
    # the broker loses what it acknowledged since its last save (1 s); a request the peer had taken
    # and answered before the kill is never sent again, so an audit that lagged misses it for good.
    ids = [data["id"] for _t, data, _d in audit.messages() if data]
    peer_ids = {rid for (rid,) in query(tmp_path / "peer.db", "SELECT id FROM request")}
    assert peer_ids == set(raised) and len(raised) == requests
    if how == "sigkill":
        assert set(ids) <= set(raised)
    else:
        assert set(ids) == set(raised)
    figures["audit_copies"] = len(ids)
    # Exactly-once effect: one upstream "accepted" applied per request, none missing, none doubled.
    answered = Counter(
        rid for (rid,) in query(terminal.db.path, "SELECT request_id FROM card_log WHERE event = 'accepted'")
    )
    assert set(answered) == set(raised) and set(answered.values()) == {1}
    # Truthful status: never "connected" while the broker was down, once the drop had time to be seen
    # (2 s after a SIGTERM/SIGKILL: an RST is seen in < 1.5 s, reliability finding 8).
    down = [t for t, up, _s in status.samples if not up]
    late_lies = [t - down[0] for t, up, s in status.samples if not up and s == "connected"]
    late_lies = [age for age in late_lies if age > 2]
    assert not late_lies, f"status said connected {late_lies[:3]} s into the outage"
    figures["outage_samples"] = len(down)
    return figures


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_broker_outage_under_traffic_loses_and_doubles_nothing(tmp_path: Path, how: str) -> None:
    # R11 on the clean stop, with the peer on a plain persistent subscription: a broker that stops
    # cleanly loses nothing it acknowledged and keeps the session's subscriptions, so upstream sees
    # every loop's sequence in order (after dedupe). Not on a shared subscription: mosquitto 2.0.11
    # does not restore those, so what the terminal published before the peer subscribed again comes
    # with the terminal's re-publish, after newer ones, and shows as a gap at upstream
    # (test_shared_peer_rejoin.py; adapters/peer_watch.py). A SIGKILLed broker may lose up to its
    # last ~2 s of acknowledged messages (periodic saves): the re-publish brings them later, out of
    # order too, and upstream's gap counter is how that shows: no assertion there.
    figures = run_outage(tmp_path, how=how, outage_s=6, requests=150, rate=20, shared=how == "sigkill")
    if how == "sigterm":
        assert figures["audit_copies"] >= 150
        assert figures["peer_gaps"] == 0, figures


def test_a_frozen_broker_is_shown_offline_within_two_keepalives(tmp_path: Path) -> None:
    """SIGSTOP keeps the TCP link open (half-open): only keepalive can notice. Asserted near the
    bound the issue names (2 x keepalive + 1 s, plus one watchdog tick); the soak measures it."""
    config, _ = make_config(tmp_path, loops=1, cards=5, sensors=0)
    terminal = Terminal.open(config, tmp_path / "data")
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        with TerminalServices(terminal, settings_for(broker.port, keepalive_s=KEEPALIVE_S)) as services:
            wait_for(lambda: services.subscribed())
            broker.freeze()
            frozen = time.monotonic()
            wait_for(lambda: services.link_state().state != "connected", timeout=30, what="offline")
            seen = time.monotonic() - frozen
            # Goal 2 x keepalive + 1 s = 5 s; the soak measured 4.0-4.98 s over 5 runs (the watchdog
            # ticks every second), so CI allows one tick more rather than flake at the edge.
            assert seen <= 2 * KEEPALIVE_S + 2, f"half-open link shown connected for {seen:.1f} s"
            broker.thaw()
            wait_for(lambda: services.subscribed(), timeout=30, what="online again")
    finally:
        broker.thaw()
        broker.stop()
        terminal.close()
