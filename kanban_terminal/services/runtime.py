"""The terminal's background services in one place, for the TUI, `serve` and the demo.

`TerminalServices` starts and stops, for one `Terminal`: the MQTT link, the inbound worker (bin
signals in groups, upstream statuses; each message acknowledged to the broker only after its commit),
the outbox relay and the housekeeping timer. The TUI and `kanban-terminal serve` run exactly this,
so a cell without a screen behaves like one with a screen.

paho is imported only when a link is started, so importing `services` stays free of it.
Run headless: `python -m kanban_terminal.services.runtime serve --config FILE --data-dir DIR`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from kanban_terminal.adapters.topics import LineTopics
from kanban_terminal.adapters.wire import InboundDecoder
from kanban_terminal.config import MqttSettings, TerminalConfig, load_config
from kanban_terminal.domain.inbound import BinSignal, Refusal, UpstreamStatus
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.andon_link import LinkAndonPublisher
from kanban_terminal.services.andon_publishing import connect_publisher, publish_current
from kanban_terminal.services.andon_signals import handle_andon_signal
from kanban_terminal.services.health_publisher import HealthPublisher
from kanban_terminal.services.refusals import keep_refusals
from kanban_terminal.services.relay import Relay, outbox_state, read_fresh
from kanban_terminal.services.signals import SignalApplier, SignalResult, prune_signals
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from kanban_terminal.storage.scan_repo import driver

if TYPE_CHECKING:
    from kanban_terminal.adapters.demo import DemoEnvironment
    from kanban_terminal.adapters.mqtt_client import MqttLink

log = logging.getLogger(__name__)

GROUP_MAX = 256
"""Signals committed in one transaction at most: enough to pass the one-fsync-per-signal ceiling,
small enough that the first signal of a burst is acknowledged within milliseconds."""
PRUNE_EVERY_S = 3600.0
ESCALATION_TICK_S = 5.0
"""Headless escalation and material-andon check interval; tiers are minutes apart."""


@dataclass(frozen=True)
class LinkStatus:
    """Everything the status bar shows about the link and the outbox."""

    state: str
    """connected, reconnecting, offline, or `disabled` when no broker is configured."""
    since: datetime
    detail: str
    queued: int
    """Requests upstream has not answered yet."""
    unsent: int
    """Of those, requests the broker has not acknowledged yet."""
    oldest_at: datetime | None
    """When the oldest unanswered request was raised (its age is now - oldest_at)."""
    last_error: str
    """The last broker refusal of a request, empty when none."""


@dataclass(frozen=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


class TerminalServices:
    """Link + inbound worker + relay for one terminal. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        terminal: Terminal,
        mqtt: MqttSettings | None,
        *,
        group_max: int = GROUP_MAX,
        escalate: bool = False,
    ):
        """Args:
        terminal: the terminal the services run for.
        mqtt: the broker link, or None to run offline (requests wait in the outbox).
        group_max: most bin signals committed in one transaction.
        escalate: run the andon escalation timer here (headless `serve`); the screen runs its own.
        """
        self.terminal = terminal
        self.escalate = escalate
        self._escalation_thread: threading.Thread | None = None
        self._andon_unsubscribe: Callable[[], None] | None = None
        self._andon_link: LinkAndonPublisher | None = None
        self.settings = mqtt
        self.group_max = group_max
        cfg = terminal.config
        self.topics = LineTopics(cfg.site.id, cfg.line.id)
        self.applier = SignalApplier(terminal)
        self.wire = InboundDecoder(cfg, self.topics)
        self.link: MqttLink | None = None
        self.relay: Relay | None = None
        self.health: HealthPublisher | None = None
        self._inbox: queue.SimpleQueue[_Inbound | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self.signals_applied = 0
        self.signals_duplicate = 0
        self._groups_committed = 0
        self._kill_after_commits = int(os.environ.get(KILL_AFTER_COMMITS_ENV, "0") or 0)
        """Fault-suite hook (R7): SIGKILL this process right after its Nth signal-group commit,
        before the broker is told; 0, the default, never. Forcing that instant cannot be done from
        outside: a random kill lands there only by luck."""
        self.signals_refused = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> TerminalServices:
        if self.escalate:
            self._escalation_thread = threading.Thread(
                target=self._escalation_loop, name="escalation", daemon=True
            )
            self._escalation_thread.start()
        if self.settings is None:
            return self
        from kanban_terminal.adapters.mqtt_client import MqttLink

        window = self.settings.inflight
        cfg = self.terminal.config
        self.link = MqttLink(
            self.settings,
            cfg.terminal.id,
            subscriptions=[(self.topics.all_device_signals, 1), (self.topics.status, 1)],
            on_message=self._on_message,
            availability_topic=self.topics.terminal_availability(cfg.terminal.id),
            # Headroom above the relay's window for availability heartbeats.
            max_inflight=window + 5,
            # Four full groups: the worker never waits for the broker during a burst, and a burst
            # waits in the broker's queue, not in this process (memory target: bench, RSS).
            # The worker acknowledges every message it has handled, so this window never closes.
            receive_maximum=4 * self.group_max,
        )
        self.relay = Relay(
            self.terminal,
            self.link,
            window=window,
            republish_after=timedelta(seconds=self.settings.republish_after_s),
        )
        self.health = HealthPublisher(
            self.terminal,
            self.link,
            self.topics.terminal_health(cfg.terminal.id),
            link_state=lambda: self.link.state().state if self.link else "disabled",
            last_error=lambda: self.relay.last_error if self.relay else "",
        )
        self._andon_link = LinkAndonPublisher(
            self.link, self.topics, replay_s=self.settings.replay_after_reconnect_s
        )
        self._andon_unsubscribe = connect_publisher(self.terminal, self._andon_link)
        self.link._on_published = self.relay.on_published
        self.link._on_connected = self._on_connected
        self._worker = threading.Thread(target=self._work, name="mqtt-inbound", daemon=True)
        self._worker.start()
        self.relay.start()
        self.health.start()
        self.link.start()
        return self

    def _on_connected(self, session_present: bool) -> None:
        assert self.relay is not None and self.health is not None
        self.relay.on_connected(session_present)
        self.health.poke()  # a retained health message from before the outage may be stale
        # The retained line state must be current after an outage; read it off paho's thread.
        threading.Thread(target=self._publish_line_state, name="line-state", daemon=True).start()

    def _publish_line_state(self) -> None:
        try:
            publish_current(self.terminal)
        except Exception:
            log.exception("could not publish the current line state")
        if self._andon_link is not None:
            self._andon_link.replay_after_reconnect()

    def _escalation_loop(self) -> None:
        from kanban_terminal.services.escalation import EscalationRunner

        runner = EscalationRunner(self.terminal)
        while not self._stop.wait(ESCALATION_TICK_S):
            try:
                runner.tick()
            except Exception:
                log.exception("escalation tick failed; next tick in %.0f s", ESCALATION_TICK_S)

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        if self._andon_unsubscribe:
            self._andon_unsubscribe()
        if self._escalation_thread:
            self._escalation_thread.join(timeout=10)
        if self.link:
            self.link.stop()
        if self.relay:
            self.relay.stop()
        if self.health:
            self.health.stop()
        if self._worker:
            self._worker.join(timeout=10)

    def __enter__(self) -> TerminalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def subscribed(self) -> bool:
        """The broker holds every subscription: from here on nothing published to us is dropped."""
        return self.link is not None and self.link.subscribed

    def link_state(self) -> LinkStatus:
        """For the status bar; cheap enough to call every second (one indexed query)."""
        outbox = self.relay.state() if self.relay else outbox_state(self.terminal)
        if self.link is None:
            state, since, detail = "disabled", self.terminal.clock(), "no broker configured"
        else:
            link = self.link.state()
            state, since, detail = link.state, link.since, link.detail
        return LinkStatus(
            state, since, detail, outbox.queued, outbox.unsent, outbox.oldest_at, outbox.last_error
        )

    # -- inbound -----------------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        # paho's thread: only hand over. Parsing and SQLite happen on the worker.
        self._inbox.put(_Inbound(topic, payload, mid, qos, generation))

    def _ack(self, item: _Inbound) -> None:
        if self.link is not None:
            self.link.ack(item.mid, item.qos, item.generation)

    def _work(self) -> None:
        next_prune = 0.0
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=1.0)
            except queue.Empty:
                first = None
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY_S
                try:
                    prune_signals(self.terminal)
                except (SQLAlchemyError, sqlite3.Error) as exc:
                    log.error("could not prune old signal keys: %s", exc)
            if first is None:
                continue
            items = [first]
            while len(items) < self.group_max:
                try:
                    more = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    break
                items.append(more)
            if self.relay is not None:
                self.relay.hold_marks(True)
            try:
                self._handle(items)
            except Exception:
                log.exception("inbound worker failed on a group; messages stay unacknowledged")
            finally:
                if self.relay is not None:
                    self.relay.hold_marks(self._inbox.qsize() > 0)  # more to come: keep them

    def _handle(self, items: list[_Inbound]) -> None:
        group: list[tuple[_Inbound, BinSignal]] = []
        refused: list[tuple[_Inbound, Refusal]] = []
        now = self.terminal.clock()
        for item in items:
            # The wire schema's single entry: a domain value, or a refusal with its door and reason.
            message = self.wire.decode(item.topic, item.payload, now)
            if isinstance(message, BinSignal):
                group.append((item, message))
                continue
            if isinstance(message, Refusal):
                refused.append((item, message))
                continue
            # A status or an andon button: its own transaction, after the signals before it.
            self._flush(group)
            group = []
            step: Callable[[], object]
            if isinstance(message, UpstreamStatus):
                step = partial(apply_upstream_status, self.terminal, message)
            else:
                step = partial(handle_andon_signal, self.terminal, message)
            if self._retrying(lambda step=step: step() or True):
                self._ack(item)
        self._flush(group)
        if refused and self._retrying(partial(self._keep_refused, [r for _, r in refused])):
            self.signals_refused += sum(r.door.startswith("mqtt:device/") for _, r in refused)
            for item, _ in refused:
                self._ack(item)

    def _keep_refused(self, refusals: list[Refusal]) -> bool:
        keep_refusals(self.terminal, refusals)
        return True

    def _flush(self, group: list[tuple[_Inbound, BinSignal]]) -> None:
        if not group:
            return

        def apply() -> bool:
            results = self.applier.apply([signal for _, signal in group], self._before_group_commit)
            dup = sum(r.duplicate for r in results)
            if dup:
                log.info("%d signal(s) already applied (redelivered): not applied again", dup)
            self.signals_duplicate += dup
            self.signals_applied += len(results) - dup
            return True

        if self._retrying(apply):
            self._groups_committed += 1
            if self._kill_after_commits and self._groups_committed >= self._kill_after_commits:
                log.warning("fault hook %s: killed after a commit, before its acks", KILL_AFTER_COMMITS_ENV)
                os.kill(os.getpid(), signal.SIGKILL)
            # Committed and fsynced: only now may the broker forget these messages.
            for item, _ in group:
                self._ack(item)

    def _before_group_commit(
        self, conn: Connection, results: list[SignalResult]
    ) -> Callable[[bool], None] | None:
        """Last inside a group's transaction: mark the PUBACKs that came in meanwhile (one write turn
        for both), and read what the group's new requests need to be published straight after the
        commit by this thread (`Relay.publish_fresh`) rather than after the relay thread's turn."""
        relay = self.relay
        if relay is None:
            return None
        raised = [
            (r.outcome.request_id, r.outcome.loop_id)
            for r in results
            if r.outcome is not None
            and r.outcome.kind is OutcomeKind.REQUEST_RAISED
            and r.outcome.request_id
            and r.outcome.loop_id
        ]
        acked = relay.take_acked()
        try:
            moved = relay.mark_in(conn, acked) if acked else []
            fresh = read_fresh(driver(conn), raised, relay.window) if raised else None
        except BaseException:
            relay.marked(acked, [], committed=False)  # taken but not marked: the relay keeps them
            raise

        def after(committed: bool) -> None:
            if acked:
                relay.marked(acked, moved, committed=committed)
            if committed and fresh is not None:
                relay.publish_fresh(fresh)

        return after

    def _retrying(self, step: object) -> bool:
        """Run a storage step until it commits or the services stop (then: not acknowledged, so
        the broker redelivers after the restart)."""
        delay = 0.1
        while True:
            try:
                return bool(step())  # type: ignore[operator]
            except (SQLAlchemyError, sqlite3.Error) as exc:
                # Raw driver errors too: the signal path writes through the sqlite3 connection
                # (savepoints, dedupe keys), and a "database is locked" that escaped this retry left
                # its group unacknowledged until the next reconnect, stalling every later signal.
                log.error("inbound messages not stored, retrying in %.1f s: %s", delay, exc)
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, 5.0)


KILL_AFTER_COMMITS_ENV = "KANBAN_FAULT_KILL_AFTER_COMMITS"


def resolve_mqtt(config: TerminalConfig, mqtt_url: str | None) -> MqttSettings | None:
    """The broker to use: `--mqtt URL`, else KANBAN_MQTT_URL, else the config's [mqtt] section."""
    url = mqtt_url or os.environ.get("KANBAN_MQTT_URL")
    if url:
        from kanban_terminal.adapters.mqtt_client import parse_mqtt_url

        return parse_mqtt_url(url, config.mqtt)
    return config.mqtt


def freeze_start_up_objects() -> None:
    """Take what start-up built (config, ORM metadata, screens) out of the cyclic collector's walks.

    Why: a full (generation 2) collection walks every live object with the GIL held. With a
    2,000-card line it took 58-89 ms, twice in a 4 s burst of 500 signals/s, and stalled every
    thread at once: ingest, relay and paho (traced; the run's slowest signals all waited on it).
    Frozen objects are never collected, so this runs once, after start-up; what is made later
    (per-signal garbage, screens opened later) is collected as before.
    """
    gc.collect()
    gc.freeze()


def _wait_for_signal(stop: threading.Event | None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


def run_serve(
    config: TerminalConfig,
    data_dir: Path,
    mqtt_url: str | None = None,
    *,
    stop: threading.Event | None = None,
) -> int:
    """`kanban-terminal serve`: the background services with no screen, until SIGTERM/SIGINT or
    `stop` is set. Returns the process exit code."""
    terminal = Terminal.open(config, data_dir, long_running=True)
    settings = resolve_mqtt(config, mqtt_url)
    if settings is None:
        log.warning("no broker configured: requests wait in the outbox (use --mqtt URL)")
    try:
        with TerminalServices(terminal, settings, escalate=True):
            freeze_start_up_objects()
            log.info("serving terminal %s (data in %s)", config.terminal.id, data_dir)
            _wait_for_signal(stop)
    finally:
        terminal.close()
    return 0


def run_upstream(
    config: TerminalConfig,
    data_dir: Path,
    mqtt_url: str | None = None,
    *,
    stop: threading.Event | None = None,
) -> int:
    """`kanban-terminal upstream`: the supermarket peer for every line of the config's site."""
    from kanban_terminal.adapters.upstream import UpstreamPeer

    settings = resolve_mqtt(config, mqtt_url) or MqttSettings()
    with UpstreamPeer(settings, config.site.id, config.upstream, data_dir / "upstream.db"):
        _wait_for_signal(stop)
    return 0


@contextmanager
def start_demo_environment(
    config: TerminalConfig, data_dir: Path, *, hardware: bool = False
) -> Iterator[DemoEnvironment]:
    """Embedded broker + supermarket peer + simulated bin sensors (+ a simulated station behind the
    firmware bridge with `hardware`); yields where to connect."""
    from kanban_terminal.adapters.demo import demo_environment

    with demo_environment(config, data_dir, hardware=hardware) as env:
        yield env


def main(argv: list[str] | None = None) -> int:
    """Headless entry point until the CLI wires these verbs (used by the process-kill tests)."""
    parser = argparse.ArgumentParser(prog="python -m kanban_terminal.services.runtime")
    parser.add_argument("verb", choices=["serve", "upstream"])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--mqtt", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    run = run_serve if args.verb == "serve" else run_upstream
    return run(config, args.data_dir, args.mqtt)


if __name__ == "__main__":
    raise SystemExit(main())
