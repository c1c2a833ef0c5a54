"""The terminal's runtime: the one object that starts background work, for the screen and `serve`.

`Runtime` starts and stops, for one `Terminal`: the MQTT link with its inbound worker, the outbox
relay, the health publisher and the andon link (only with a broker); andon escalation, the lost-card
check and the serial scanners of the config; and the database's background WAL checkpoints when the
terminal was opened long-running. `kanban-terminal serve` and the screen (`run`, `demo`) both build
it through `open_runtime`, so a cell without a display does what a cell with one does. Screens only
subscribe to the bus and call use cases or `Runtime.scan`; they start no job of their own.

It must not decide anything itself: every job calls a use case, and results reach screens as bus
events. paho and pyserial are imported only when a link or a scanner is started.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kanban_terminal.adapters.anchor_publisher import AnchorPublisher
from kanban_terminal.adapters.andon_link import LinkAndonPublisher
from kanban_terminal.adapters.handover_link import connect_handover_publisher
from kanban_terminal.adapters.health_publisher import HealthPublisher
from kanban_terminal.adapters.peer_watch import watch_peers
from kanban_terminal.config import MqttSettings, TerminalConfig
from kanban_terminal.runtime.inbound import GROUP_MAX, InboundWorker
from kanban_terminal.runtime.jobs import Periodic, SerialScanners, cancel_job, start_reconcile
from kanban_terminal.runtime.link_age import LinkAge
from kanban_terminal.runtime.runway_job import GAP_S, RunwayJob
from kanban_terminal.runtime.start_up import freeze_start_up_objects
from kanban_terminal.services.andon_publishing import connect_publisher, publish_current
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.events import ScanOutcome
from kanban_terminal.services.lost_cards import find_silent, flag_lost
from kanban_terminal.services.relay import Relay, outbox_state
from kanban_terminal.services.reroute import LoopRerouted
from kanban_terminal.services.runway import RunwayMonitor
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.signals import SignalApplier
from kanban_terminal.services.terminal import Terminal, utc_now
from kanban_terminal.topics import LineTopics

if TYPE_CHECKING:
    from kanban_terminal.adapters.mqtt_client import MqttLink

log = logging.getLogger(__name__)

ESCALATION_TICK_S = 1.0
"""Andon escalation and material-andon check interval (what the screen ticked before it moved here;
tiers are minutes apart). A tick compares the clocks and reads a table only when something can be
due (services/escalation_due.py): an idle tick costs microseconds, not the 1.5 ms of three reads."""
LOST_CARD_CHECK_S = 300.0
"""The lost-card check: minutes of delay do not matter, a silent card has been silent for hours."""


@dataclass(frozen=True)
class RuntimeOptions:
    """How often the timed jobs run, and the hooks a test or a benchmark may give."""

    group_max: int = GROUP_MAX
    """Most bin signals committed in one transaction."""
    escalation_tick_s: float = ESCALATION_TICK_S
    lost_card_check_s: float = LOST_CARD_CHECK_S
    after_group_commit: Callable[[int], None] | None = None
    """Called right after each signal group's commit, before its acks (see `InboundWorker`)."""


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


class Runtime:
    """Every background job of one terminal. Use as a context manager or start()/stop()."""

    def __init__(self, terminal: Terminal, mqtt: MqttSettings | None, options: RuntimeOptions | None = None):
        """Args:
        terminal: the terminal the jobs run for.
        mqtt: the broker link, or None to run offline (requests wait in the outbox).
        options: job periods and hooks; the defaults are what `serve` and the screen run.
        """
        self.terminal = terminal
        self.settings = mqtt
        self.options = options or RuntimeOptions()
        cfg = terminal.config
        self.topics = LineTopics(cfg.site.id, cfg.line.id)
        self.inbound = InboundWorker(
            terminal,
            self.topics,
            group_max=self.options.group_max,
            after_group_commit=self.options.after_group_commit,
        )
        self.link: MqttLink | None = None
        self._link_age = LinkAge(terminal.clock, terminal.monotonic)
        # "Queued N (oldest X)" and health's `oldest_age_s`, likewise: two oldest, so it keeps a few.
        self._queue_age = LinkAge(terminal.clock, terminal.monotonic, keep=4)
        self.health: HealthPublisher | None = None
        self.anchors: AnchorPublisher | None = None
        """Publishes the card log's head retained (adapters/anchor_publisher.py); with a broker only."""
        self._andon_link: LinkAndonPublisher | None = None
        self._andon_unsubscribe: Callable[[], None] | None = None
        self._cancels: Periodic | None = None
        self._cancels_unsubscribe: Callable[[], None] | None = None
        self._reconcile: Periodic | None = None
        self._handover_unsubscribe: Callable[[], None] | None = None
        self._scan_lock = threading.Lock()
        """One scan (or lost-card flagging) at a time, in the order read: keyboard, serial, timer."""
        self.escalation = EscalationRunner(terminal)  # on the terminal's monotonic clock
        # Runway warnings before run-out (issue 18): on a timer, and at once when a card changes
        # (for the changed cards' loops only: runtime/runway_job.py).
        self.runway = RunwayMonitor(terminal)
        self.runway_job = RunwayJob(self.runway, terminal.card_loops, cfg.runway.check_seconds)
        # At most one recompute every `GAP_S` (5 s) however many cards change (runtime/runway_job.py).
        self._runway_timer = Periodic(
            "runway", cfg.runway.check_seconds, self.runway_job.step, min_gap_s=GAP_S
        )
        self._runway_unsubscribe: Callable[[], None] | None = None
        self._timers = (
            Periodic("escalation", self.options.escalation_tick_s, self.escalation.tick_when_due),
            Periodic("lost-cards", self.options.lost_card_check_s, self.flag_silent_cards),
            self._runway_timer,
        )
        self.scanners = SerialScanners(cfg.scanners, terminal.bus, self._scan_from_reader)
        self._jobs: list[str] = []
        self._used = False

    # -- what the screen and the CLI call ------------------------------------------------------------

    def jobs(self) -> tuple[str, ...]:
        """The names of the jobs this runtime started (empty before `start` and after `stop`)."""
        return tuple(self._jobs)

    @property
    def started(self) -> bool:
        return bool(self._jobs)

    def scan(
        self, code: str, *, source: str = "keyboard", confirmed: bool = False, actor: str | None = None
    ) -> ScanOutcome:
        """Record one scan (from a screen's worker thread or a scanner's reader); one at a time, in the
        order they come, so two reads of one card never interleave. The outcome is also published."""
        with self._scan_lock:
            return record_scan(self.terminal, code, source=source, confirmed=confirmed, actor=actor)

    def flag_silent_cards(self) -> list[str]:
        """The lost-card job's step: flag circulating cards silent too long while their loop kept
        moving (services/lost_cards.py); screens hear of it through `CardsChanged`."""
        silent = find_silent(self.terminal)
        if not silent:
            return []
        with self._scan_lock:  # never interleave with a scan of the same card
            return flag_lost(self.terminal, [c.card_id for c in silent], source="system")

    def scanner_states(self) -> dict[str, bool]:
        """Each configured serial scanner and whether its port is open; changes come as events."""
        return self.scanners.states()

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
            # The age the status bar shows counts elapsed time, not the wall clock (link_age.py).
            state, since, detail = link.state, self._link_age.since(link.state, link.since), link.detail
        oldest = self._queue_age.since("queued", outbox.oldest_at) if outbox.oldest_at else None
        return LinkStatus(state, since, detail, outbox.queued, outbox.unsent, oldest, outbox.last_error)

    # The inbound worker's parts, under the names the services had before they moved here.
    @property
    def relay(self) -> Relay | None:
        return self.inbound.relay

    @relay.setter
    def relay(self, relay: Relay | None) -> None:
        self.inbound.relay = relay

    @property
    def applier(self) -> SignalApplier:
        return self.inbound.applier

    @property
    def signals_applied(self) -> int:
        return self.inbound.signals_applied

    @property
    def signals_duplicate(self) -> int:
        return self.inbound.signals_duplicate

    @property
    def signals_refused(self) -> int:
        return self.inbound.signals_refused

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Runtime:
        """Start every job once (a stopped runtime is not started again: build a new one)."""
        if self._used:
            raise RuntimeError("a Runtime starts once; build a new one")
        self._used = True
        try:
            self._start_jobs()
        except BaseException:
            self.stop()  # a link that cannot be built must not leave timers and ports behind
            raise
        log.info("runtime started: %s", ", ".join(self._jobs))
        return self

    def _start_jobs(self) -> None:
        checkpointer = self.terminal.db.checkpointer
        if checkpointer is not None and not checkpointer.running:
            checkpointer.start()  # stopped by Database.close: it serves the file's last commits too
        if checkpointer is not None:
            self._jobs.append("wal-checkpoint")
        # A clock set back while the terminal was down is marked in the log before any job can write
        # a row on the new clock (the escalation tick would only see it on its first run, after the
        # runway or lost-card jobs may have written: a row that runs backwards with no mark).
        self.escalation.clock_watch.check()
        for timer in self._timers:
            timer.start()
            self._jobs.append(timer.name)
        self._runway_unsubscribe = self.terminal.bus.subscribe(
            lambda e: self._runway_timer.wake() if self.runway_job.note(e) else None
        )
        self._runway_timer.wake()  # the board and `serve` know every runway from the start
        self.scanners.start()
        self._jobs.extend(f"scanner:{name}" for name in self.scanners.names())
        if self.settings is not None:
            self._start_link(self.settings)

    def _start_link(self, settings: MqttSettings) -> None:
        from kanban_terminal.adapters.mqtt_client import MqttLink

        window = settings.inflight
        cfg = self.terminal.config
        self.link = link = MqttLink(
            settings,
            cfg.terminal.id,
            subscriptions=[(self.topics.all_device_signals, 1), (self.topics.status, 1)],
            availability_topic=self.topics.terminal_availability(cfg.terminal.id),
            # Headroom above the relay's window for availability heartbeats.
            max_inflight=window + 5,
            # Four full groups: the worker never waits for the broker during a burst, and a burst
            # waits in the broker's queue, not in this process (memory target: bench, RSS).
            # The worker acknowledges every message it has handled, so this window never closes.
            receive_maximum=4 * self.options.group_max,
            clock=self.terminal.clock,  # the state's stamp and the status bar's "now": one clock
        )
        self.inbound.attach(link)  # applied on paho's thread once read (runtime/inbound.py says why)
        self.relay = relay = Relay(
            self.terminal, link, window=window, republish_after=timedelta(seconds=settings.republish_after_s)
        )
        health = HealthPublisher(
            self.terminal,
            link,
            self.topics.terminal_health(cfg.terminal.id),
            link_state=lambda: link.state().state,
            last_error=lambda: relay.last_error,
            queue_age=lambda at: self._queue_age.age_s("queued", at),  # the status bar's figure
            interval=settings.health_s,
        )
        self._reconcile = start_reconcile(self.terminal, link, self.topics, settings.reconcile_after_s)
        self._andon_link = LinkAndonPublisher(link, self.topics, replay_s=settings.replay_after_reconnect_s)
        self._andon_unsubscribe = connect_publisher(self.terminal, self._andon_link)
        self._handover_unsubscribe = connect_handover_publisher(self.terminal.bus, link, self.topics)
        link.set_handlers(on_published=relay.on_published, on_connected=self._on_connected)
        watch_peers(link, cfg.site.id, lambda _peer: relay.republish_unanswered())
        self._cancels = cancels = cancel_job(self.terminal, link, settings)
        self._cancels_unsubscribe = self.terminal.bus.subscribe(
            lambda e: cancels.wake() if isinstance(e, LoopRerouted) else None
        )
        self.inbound.start()
        relay.start()
        self._cancels.start()
        health.start()
        self.health = health  # only once started: `stop` joins its thread
        self.anchors = AnchorPublisher(self.terminal, link, self.topics.terminal_log_anchor(cfg.terminal.id))
        self.anchors.start()
        link.start()
        self._jobs += [
            "mqtt-link", "mqtt-inbound", "relay", "cancels", "health", "andon-link", "log-anchor",
            "reconcile", "handover-link",
        ]  # fmt: skip

    def _on_connected(self, session_present: bool) -> None:
        assert self.relay is not None and self.health is not None
        self.relay.on_connected(session_present)
        self.health.poke()  # a retained health message from before the outage may be stale
        if self._cancels is not None:
            self._cancels.wake()
        if self.anchors is not None:
            self.anchors.poke(again=True)  # the broker may have lost the retained anchor with its store
        # The retained line state must be current after an outage; read it off paho's thread.
        threading.Thread(target=self._publish_line_state, name="line-state", daemon=True).start()

    def _publish_line_state(self) -> None:
        try:
            publish_current(self.terminal)
        except Exception:
            log.exception("could not publish the current line state")
        if self._andon_link is not None:
            self._andon_link.replay_after_reconnect()

    def _scan_from_reader(self, code: str, source: str) -> None:
        self.scan(code, source=source)

    def stop(self) -> None:
        self.inbound.stop()
        if self._andon_unsubscribe:
            self._andon_unsubscribe()
        if self._handover_unsubscribe:
            self._handover_unsubscribe()
        if self._cancels_unsubscribe:
            self._cancels_unsubscribe()
        if self._runway_unsubscribe:
            self._runway_unsubscribe()
        for timer in self._timers:
            timer.stop()
        self.escalation.close()
        self.scanners.stop()
        if self.anchors:
            self.anchors.stop()  # before the link: the last head leaves with the goodbye
        if self._reconcile:
            self._reconcile.stop()
        if self.link:
            self.link.stop()
        if self.relay:
            self.relay.stop()
        if self._cancels:
            self._cancels.stop()
        if self.health:
            self.health.stop()
        self.inbound.join()
        self._jobs.clear()

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


TerminalServices = Runtime
"""The name the runtime had in services/runtime.py; the same class."""


@contextmanager
def open_runtime(
    config: TerminalConfig,
    data_dir: Path,
    mqtt: MqttSettings | None,
    *,
    clock: Callable[[], datetime] = utc_now,
    options: RuntimeOptions | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[Runtime]:
    """Open the terminal long-running (it owns the data dir) and run its jobs until the block ends:
    the one start-up path of `serve`, `run` and `demo`. `monotonic` goes with `clock` (tests)."""
    terminal = Terminal.open(config, data_dir, clock=clock, long_running=True, monotonic=monotonic)
    try:
        freeze_start_up_objects()  # before the link is online: start_up.py says why
        with Runtime(terminal, mqtt, options) as runtime:
            yield runtime
    finally:
        terminal.close()
