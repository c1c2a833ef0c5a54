"""The inbound worker: every MQTT message the terminal receives, applied in arrival order.

Bin signals are applied in groups of up to `group_max` per transaction; upstream statuses and andon
buttons one at a time, in arrival order. Each message is acknowledged to the broker only after its
commit, so a crash between the two makes the broker deliver it again (and the dedupe keys drop it).

Where the work runs (issue 19): on paho's own thread, once paho has read everything waiting in the
socket (`drain`, the link's `on_drained` hook): the messages read since the last drain are one
group, as the worker's queue made them before. Handed to a thread of its own, each paced signal
woke that thread, and its PUBACK and request woke paho's again: 9.6 wake-ups and ~3x the CPU of a
one-thread paho + sqlite3 pipeline per signal at 500/s (docs/BENCHMARKS.md, "inline"). The worker
thread is kept for what must not hold paho's thread: a storage step that fails (a locked or full
database) is handed to it with everything after it, and it retries with back-off as before, while
later messages queue behind it in order; the hourly prune of old keys runs there too. So does a
group that would hold paho's thread past the broker's keepalive: after a slow commit, or with the
broker's deadline near (runtime/keepalive_guard.py), so the link keeps its pings. While signals
come fast, a ready group waits a few ms for more in paho's next passes (runtime/inbound_linger.py).

Every payload goes through the wire schema's one entry (`adapters/wire`, `InboundDecoder.decode`):
a domain value (bin signal, andon button, upstream status) or a refusal with its door and reason,
which is kept in `rejected_input` (services/refusals.py) before its message is acknowledged.

It must not start anything but its own thread (the runtime starts and wires it), validate nothing
itself (the schema does), never acknowledge before a commit, and never wait on paho's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from kanban_terminal.adapters.mqtt_wakeups import broker_slack, end_passes_by
from kanban_terminal.adapters.wire import InboundDecoder
from kanban_terminal.config_bins import BinIndex
from kanban_terminal.domain.inbound import BinSignal, Refusal, UpstreamStatus
from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.runtime.inbound_linger import Linger
from kanban_terminal.runtime.keepalive_guard import KeepaliveGuard
from kanban_terminal.services.andon_signals import handle_andon_signal
from kanban_terminal.services.refusals import keep_refusals
from kanban_terminal.services.relay import Relay
from kanban_terminal.services.signals import SignalApplier, SignalResult, prune_signals
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from kanban_terminal.storage.errors import STORAGE_ERRORS
from kanban_terminal.storage.unit_of_work import UnitOfWork
from kanban_terminal.topics import LineTopics

if TYPE_CHECKING:
    from kanban_terminal.adapters.mqtt_client import MqttLink

log = logging.getLogger(__name__)

GROUP_MAX = 256
"""Signals committed in one transaction at most: enough to pass the one-fsync-per-signal ceiling,
small enough that the first signal of a burst is acknowledged within milliseconds."""
PRUNE_EVERY_S = 3600.0
INLINE_TURN_WAIT_S = 0.05
"""paho's thread waits this long at most for the process's write turn (a scan, a mark, a checkpoint:
milliseconds); held longer (a backup, a restore) the group goes to the worker thread, so the link
keeps reading, pinging and publishing meanwhile."""


@dataclass(frozen=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


class _Deferred(Exception):
    """A storage step failed on paho's thread: it and what follows go to the worker thread."""


class InboundWorker:
    """One thread that applies what the link received; `relay` and `link` are set by the runtime."""

    def __init__(
        self,
        terminal: Terminal,
        topics: LineTopics,
        *,
        group_max: int = GROUP_MAX,
        after_group_commit: Callable[[int], None] | None = None,
    ):
        """Args:
        terminal: the terminal the messages are applied to.
        topics: the line's topics (which topic is the status topic, which a device's).
        group_max: most bin signals committed in one transaction.
        after_group_commit: called with the number of groups committed so far, right after a
            group's commit and before its messages are acknowledged (the fault suite kills the
            process there: tests/support/serve_with_kill.py).
        """
        self.terminal = terminal
        self.topics = topics
        self.group_max = group_max
        self.after_group_commit = after_group_commit
        bins = BinIndex(terminal.config.bins)  # one table for both (issue 19: 8 MB less for 20,000 bins)
        self.applier = SignalApplier(terminal, bins)
        self.wire = InboundDecoder(terminal.config, topics, bins)
        self.link: MqttLink | None = None
        self.relay: Relay | None = None
        self._inbox: queue.SimpleQueue[_Inbound | None] = queue.SimpleQueue()
        self._pending: list[_Inbound] = []
        """Read by paho and not applied yet (paho's thread only): applied by the next `drain`."""
        self._lane = threading.Lock()
        self._worker_turn = False
        """The worker thread has messages (under `_lane`): new ones queue behind them, in order."""
        self._inline = False
        """The link calls `drain` (set by `attach`); else every message goes to the worker thread."""
        self.linger = Linger()
        """Whether a ready group waits a few ms for more (signals coming fast; inbound_linger.py)."""
        self.guard: KeepaliveGuard | None = None
        """Whether paho's thread may commit the next group without missing a ping (set by `attach`)."""
        self._acked: set[int] = set()
        self._in_hand = 0
        """Messages the worker thread has taken from its queue and not finished."""
        self._next_prune = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.signals_applied = 0
        self.signals_duplicate = 0
        self.signals_refused = 0
        self._groups_committed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="mqtt-inbound", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to end (it finishes or abandons its group: unacknowledged either way)."""
        self._stop.set()
        self._inbox.put(None)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def attach(self, link: MqttLink) -> None:
        """Take messages from `link` and apply them on its thread once it has read what waits."""
        self.link = link
        self._inline = True
        keepalive = link.settings.keepalive_s
        self.guard = KeepaliveGuard(keepalive, broker_slack(link.client, keepalive))
        link.set_handlers(on_message=self.on_message, on_drained=self.drain)
        end_passes_by(link.client, lambda: self.linger.deadline)

    def on_message(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        # paho's thread: only hand over (to `drain`, or to the worker thread while it has messages).
        item = _Inbound(topic, payload, mid, qos, generation)
        self.linger.arrived(time.monotonic())
        with self._lane:
            if self._inline and not self._worker_turn:
                self._pending.append(item)
                return
            self._inbox.put(item)

    def drain(self) -> None:
        """paho's thread, after each pass of its loop: apply what it read, unless more is waiting in
        the socket (then the next pass reads it into the same group)."""
        link = self.link
        if not self._pending or (len(self._pending) < self.group_max and link is not None and link.unread()):
            return
        can_wait = link is not None and link.client.is_connected()
        if self.linger.hold(time.monotonic(), len(self._pending), self.group_max, can_wait=can_wait):
            return  # signals come fast: paho's next pass ends by the deadline, with more of them
        turn = self.terminal.db.write_lock
        if time.monotonic() >= self._next_prune or not self.running:
            self._to_worker(self._pending)  # it prunes first (or is started again and then applies)
            return
        if self.guard is not None and not self.guard.inline_ok():
            self._to_worker(self._pending)  # a slow disk, or the broker's deadline near: keep pinging
            return
        # Held through the groups (the commits take it again: an RLock), so no other writer of this
        # process slips in between the look and the commit and makes paho's thread wait for it.
        if not turn.acquire(timeout=INLINE_TURN_WAIT_S):
            self._to_worker(self._pending)  # a long writer: the worker waits for the turn instead
            return
        try:
            with self.terminal.db.short_waits():  # another process's lock: hand over, not wait 10 s
                self._apply_pending()
        finally:
            turn.release()

    def _apply_pending(self) -> None:
        """Apply what paho read, in groups; a failed step hands it and the rest to the worker."""
        items_done = False
        while self._pending:
            if self.guard is not None and items_done and not self.guard.inline_ok():
                self._to_worker(self._pending)  # the last group was slow: paho's thread pings first
                return
            items_done = True
            items = self._pending[: self.group_max]
            del self._pending[: self.group_max]
            self._acked.clear()
            if self.relay is not None:
                self.relay.hold_marks(True)
            started, applied = time.monotonic(), self.signals_applied
            try:
                self._handle(items, inline=True)
                self._took(started, applied)
            except _Deferred:
                self._to_worker([i for i in items if id(i) not in self._acked] + self._pending)
            except Exception:
                log.exception("inbound messages failed on paho's thread; messages stay unacknowledged")
            finally:
                if self.relay is not None and not self._worker_turn:
                    self.relay.hold_marks(False)  # handed over: the worker says when it is done

    @property
    def waiting(self) -> int:
        """Messages received and not applied yet (paho's thread, or the worker's queue)."""
        return len(self._pending) + self._inbox.qsize() + self._in_hand

    @property
    def on_worker(self) -> bool:
        """The worker thread has messages (a failed step, a held write turn): paho's thread queues."""
        return self._worker_turn

    def _to_worker(self, items: list[_Inbound]) -> None:
        with self._lane:
            self._worker_turn = True
            for item in items:
                self._inbox.put(item)
        self._pending = []
        if not self.running and not self._stop.is_set():
            log.error("inbound worker thread was not running; starting it again")
            self.start()

    def _took(self, started: float, applied_before: int) -> None:
        if self.guard is not None:  # only new signals tell a fast disk (statuses, andons: rare)
            self.guard.group_took(time.monotonic() - started, self.signals_applied > applied_before)

    def _ack(self, item: _Inbound) -> None:
        self._acked.add(id(item))
        if self.link is not None:
            self.link.ack(item.mid, item.qos, item.generation)

    def _work(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() >= self._next_prune:  # at start, then after a message once an hour
                self._next_prune = time.monotonic() + PRUNE_EVERY_S
                try:
                    prune_signals(self.terminal)
                except STORAGE_ERRORS as exc:
                    log.error("could not prune old signal keys: %s", exc)
                except Exception:  # the thread must live: paho's thread hands it failed steps
                    log.exception("could not prune old signal keys")
            # Blocks until a message or `stop()`'s None: a timeout here only woke an idle thread
            # every second (issue 19). With no message no key is added, so the prune can wait too.
            first = self._inbox.get()
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
            self._acked.clear()
            self._in_hand = len(items)
            started, applied = time.monotonic(), self.signals_applied
            try:
                self._handle(items)
                self._took(started, applied)
            except Exception:
                log.exception("inbound worker failed on a group; messages stay unacknowledged")
            finally:
                self._in_hand = 0
                with self._lane:  # before the turn goes back: paho's thread's next group sets it
                    queued = self._inbox.qsize() > 0
                    if self.relay is not None:
                        self.relay.hold_marks(queued)  # more to come: keep them
                    if not queued:
                        self._worker_turn = False  # paho's thread applies what comes next

    # -- routing ---------------------------------------------------------------------------------

    def _handle(self, items: list[_Inbound], inline: bool = False) -> None:
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
            self._flush(group, inline)
            group = []
            step: Callable[[], object]
            if isinstance(message, UpstreamStatus):
                step = partial(apply_upstream_status, self.terminal, message)
            else:
                step = partial(handle_andon_signal, self.terminal, message)
            if self._retrying(lambda step=step: step() or True, inline):
                self._ack(item)
        self._flush(group, inline)
        if refused and self._retrying(partial(self._keep_refused, [r for _, r in refused]), inline):
            self.signals_refused += sum(r.door.startswith("mqtt:device/") for _, r in refused)
            for item, _ in refused:
                self._ack(item)

    def _keep_refused(self, refusals: list[Refusal]) -> bool:
        keep_refusals(self.terminal, refusals)
        return True

    # -- end of routing ------------------------------------------------------------------------------

    def _flush(self, group: list[tuple[_Inbound, BinSignal]], inline: bool) -> None:
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

        if self._retrying(apply, inline):
            self._groups_committed += 1
            if self.after_group_commit is not None:
                self.after_group_commit(self._groups_committed)
            # Committed and fsynced: only now may the broker forget these messages.
            for item, _ in group:
                self._ack(item)

    def _before_group_commit(self, uow: UnitOfWork, results: list[SignalResult]) -> None:
        """Last inside a group's unit of work: the relay marks the PUBACKs that came in meanwhile
        (one write turn for both) and, after the commit, publishes the group's new requests from
        this thread (`Relay.join_group`) rather than after the relay thread's turn."""
        if self.relay is None:
            return
        raised = [
            (r.outcome.request_id, r.outcome.loop_id)
            for r in results
            if r.outcome is not None
            and r.outcome.kind is OutcomeKind.REQUEST_RAISED
            and r.outcome.request_id
            and r.outcome.loop_id
        ]
        self.relay.join_group(uow, raised)

    def _retrying(self, step: object, inline: bool = False) -> bool:
        """Run a storage step until it commits or the services stop (then: not acknowledged, so
        the broker redelivers after the restart). On paho's thread (`inline`) a failure is not
        waited out there: `_Deferred` hands the step to the worker thread."""
        delay = 0.1
        while True:
            if inline and self._stop.is_set():
                return False
            try:
                return bool(step())  # type: ignore[operator]
            except STORAGE_ERRORS as exc:
                if inline:
                    raise _Deferred from exc
                # Raw driver errors too: the signal path writes through the sqlite3 connection
                # (savepoints, dedupe keys), and a "database is locked" that escaped this retry left
                # its group unacknowledged until the next reconnect, stalling every later signal.
                log.error("inbound messages not stored, retrying in %.1f s: %s", delay, exc)
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, 5.0)
