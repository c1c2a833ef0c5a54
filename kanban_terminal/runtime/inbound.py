"""The inbound worker: every MQTT message the terminal receives, applied off paho's thread.

Bin signals are applied in groups of up to `group_max` per transaction; upstream statuses and andon
buttons one at a time, in arrival order. Each message is acknowledged to the broker only after its
commit, so a crash between the two makes the broker deliver it again (and the dedupe keys drop it).

It must not start anything but its own thread (the runtime starts and wires it), parse nothing
itself beyond routing (the use cases validate), and never acknowledge before a commit.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from kanban_terminal.domain.scans import OutcomeKind
from kanban_terminal.services.andon_signals import handle_andon_signal
from kanban_terminal.services.relay import Relay
from kanban_terminal.services.signals import (
    MAX_SIGNAL_BYTES,
    BinSignal,
    SignalApplier,
    SignalResult,
    is_andon,
    parse_json_object,
    prune_signals,
    reject,
    signal_from_object,
)
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import try_apply_status
from kanban_terminal.storage.unit_of_work import UnitOfWork
from kanban_terminal.topics import LineTopics

if TYPE_CHECKING:
    from kanban_terminal.adapters.mqtt_client import MqttLink

log = logging.getLogger(__name__)

GROUP_MAX = 256
"""Signals committed in one transaction at most: enough to pass the one-fsync-per-signal ceiling,
small enough that the first signal of a burst is acknowledged within milliseconds."""
PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class _Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


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
        self.applier = SignalApplier(terminal)
        self.link: MqttLink | None = None
        self.relay: Relay | None = None
        self._inbox: queue.SimpleQueue[_Inbound | None] = queue.SimpleQueue()
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

    def on_message(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
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

    # -- routing: one function, moved as it was from services/runtime.py ---------------------------

    def _handle(self, items: list[_Inbound]) -> None:
        group: list[tuple[_Inbound, BinSignal]] = []
        now = self.terminal.clock()
        for item in items:
            if item.topic == self.topics.status:
                self._flush(group)
                group = []
                if self._retrying(
                    lambda item=item: try_apply_status(self.terminal, item.payload, item.topic)
                ):
                    self._ack(item)
                continue
            device = _device_of(item.topic)
            if device is None:
                reject(self.terminal.bus, "?", item.topic, "not a signal topic")
                self._ack(item)
                continue
            # Parsed once, then routed: an andon button or a bin signal (the andon check used to
            # decode every payload a second time before `parse_signal` decoded it again).
            data = parse_json_object(item.payload, MAX_SIGNAL_BYTES)
            if isinstance(data, dict) and is_andon(data):
                andon = data
                # Andon buttons share the device topic; the andon use case validates and dedupes.
                self._flush(group)
                group = []
                if self._retrying(
                    lambda andon=andon, device=device: handle_andon_signal(
                        self.terminal, andon, topic_device=device
                    )
                ):
                    self._ack(item)
                continue
            parsed = data if isinstance(data, str) else signal_from_object(data, device, now)
            if isinstance(parsed, str):
                self.signals_refused += 1
                reject(self.terminal.bus, device, item.topic, parsed)
                self._ack(item)
            elif not self.applier.known(device) or self.applier.card_of(parsed) is None:
                self.signals_refused += 1
                reject(self.terminal.bus, device, item.topic, "unknown device: add it under [[bins]]")
                self._ack(item)
            else:
                group.append((item, parsed))
        self._flush(group)

    # -- end of routing ------------------------------------------------------------------------------

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


def _device_of(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) >= 3 and parts[-1] == "signal" and parts[-3] == "device":
        return parts[-2]
    return None
