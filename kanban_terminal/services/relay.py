"""The transactional outbox relay: replenishment requests from SQLite to the broker, at least once.

    replenishment_request (publish_state)   pending --PUBACK ok--> published --upstream status--> done
                                                  ^                    |
                                                  +-- no answer after republish_after / reconnect

* A row is `published` only when the broker answered its QoS 1 PUBLISH with a success reason code;
  a refusal (0x87 not authorized, 0x97 quota exceeded...) leaves it `pending`, is logged and shown,
  and the row is retried after a pause. A PUBACK is not the end either (a broker crash can lose
  acknowledged messages, reliability finding 2): upstream's status for the UUID marks it `done`.
* Within a loop, rows go out in `loop_seq` order (= outbox rowid order), and each carries that seq
  so upstream can see gaps. Across loops there is no order promise (docs/PROTOCOL.md), and the relay
  uses that freedom for live priority: the loops of requests raised in the last `LIVE_WITHIN` go
  first, each still in seq order, then the backlog in rowid (oldest first) order (`outbox.hot_rows`).
* At most `window` rows are in paho's memory at a time, the backlog's share following the broker's
  answer rate (services/relay_window.py). The relay never re-publishes because `publish()` returned
  an error code (finding 4): it tracks mids and waits for the broker's answer.
* The PUBACK callback runs on paho's thread while paho holds its own lock, so it only puts the answer
  on a queue; taking our lock there could deadlock against a publish() here (paho #226).
* Two threads publish: the relay thread, and the one applying signals (paho's, after its pass; the
  inbound worker's after a failed step), which hands paho the requests its group raised right after
  the commit (`publish_fresh`) and marks PUBACKs inside its next group (`join_group`); the relay
  thread reads the outbox only when a row may be due (`_due`) or on its sweep. `_lock` keeps the
  in-memory state and the order of publishes; paho holds none of its locks while it applies.
  No paho here: it talks to a `Publisher` (the MQTT link, or a test double)."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from kanban_terminal.services.events import RequestRaised
from kanban_terminal.services.outbox import OutboxState
from kanban_terminal.services.outbox import Publisher as Publisher  # re-exported: andon link, health
from kanban_terminal.services.outbox import outbox_state as outbox_state  # re-exported: the runtime
from kanban_terminal.services.relay_sweep import Sweep
from kanban_terminal.services.relay_window import InflightWindow
from kanban_terminal.services.relay_worker import WorkerSide
from kanban_terminal.services.request_message import RequestMessages
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import outbox as outbox_sql
from kanban_terminal.storage.errors import STORAGE_ERRORS
from kanban_terminal.storage.outbox import Row
from kanban_terminal.topics import LineTopics

log = logging.getLogger(__name__)

RETRY_REFUSED_AFTER = timedelta(seconds=30)
"""A request the broker refused is tried again after this pause (an ACL fix needs no restart)."""

LIVE_WITHIN = timedelta(seconds=10)
"""A pending request raised this recently is live: its loop goes out ahead of an outage's backlog."""

HOT_PROBE = 16
"""How many of the newest pending rows are looked at to find live loops (bounds the per-step cost)."""


class Relay(WorkerSide):
    """Drains the outbox through a `Publisher` in a background thread (what the inbound worker calls
    on its own thread: services/relay_worker.py)."""

    def __init__(
        self,
        terminal: Terminal,
        publisher: Publisher,
        *,
        window: int = 20,
        republish_after: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] | None = None,
        timer: Callable[[], float] = time.monotonic,
    ):
        self.terminal = terminal
        self.publisher = publisher
        self.window = window
        self.republish_after = republish_after
        self.clock = clock or terminal.clock
        self.topic = LineTopics(terminal.config.site.id, terminal.config.line.id).requests
        self._messages = RequestMessages(terminal)
        self.last_error = ""
        self.published_total = 0
        self.mark_batches = 0  # transactions that marked PUBACKed rows (benchmarks: requests a batch)
        self._window = InflightWindow(window, timer)
        """What the broker has not answered yet (under `_lock`, like the rest of this state)."""
        self._acked: list[str] = []
        """PUBACKed request ids not yet marked published (a failed mark is retried, not lost)."""
        self._answers: queue.SimpleQueue[tuple[int, bool, str, float]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reconnect_cutoff: datetime | None = None
        """Rows last published before this (a reconnect, `republish_unanswered`) are due again."""
        self._republish = False  # `republish_unanswered` asked, the relay thread's next step cuts
        self._timer = timer
        self._thread: threading.Thread | None = None
        self._due = True
        """A row may be waiting (a new request, a reconnect, a slot a capped step wanted); else only the
        sweep reads the outbox (a read per PUBACK took the GIL from the worker, ~once a request)."""
        self._capped = False  # the last read of the outbox left due rows behind for want of window
        self.sweep = Sweep(republish_after.total_seconds())  # when the relay thread reads or marks
        self._marks_held = False
        self._lock = threading.Lock()
        """Guards the state above and the order of publishes (relay thread, inbound worker). Never
        held while waiting for the write lock; paho's callbacks only queue: no deadlock."""
        self._unsubscribe = terminal.bus.subscribe(self._on_event)

    def on_published(self, mid: int, ok: bool, reason: str) -> None:
        """The broker answered a publish (paho's thread): hand it over, never block. The relay wakes
        only for a refusal, a slot a capped step wanted, or a window's worth to mark; else the
        worker's next group or the sweep marks it (a wake per PUBACK: 2,366 steps for 3,000 signals)."""
        self._answers.put((mid, ok, reason, self._timer()))
        if self._capped or not ok or self._answers.qsize() >= self.window:
            self._wake.set()

    def on_connected(self, session_present: bool) -> None:
        """After any (re)connect, re-publish what upstream has not answered: the broker may have
        lost it (a crash between autosaves) or never forwarded it. paho resends its window itself."""
        self._reconnect_cutoff = self.clock()
        self._due = True
        self._wake.set()

    def republish_unanswered(self) -> None:
        """A peer subscribed anew (adapters/peer_watch.py): publish again what upstream has not
        answered, and each row in paho's window once marked (it went out before the peer was back)."""
        self._republish = True
        self._due = True
        self._wake.set()

    def _on_event(self, event: object) -> None:
        # A request from `publish_fresh` is with paho by now; others (a scan) need the relay.
        if isinstance(event, RequestRaised) and event.request_id not in self._window.ids:
            self._due = True
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._unsubscribe()
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        if not (self._thread and self._thread.is_alive()):  # the last PUBACKs marked: on a quiet line
            with contextlib.suppress(*STORAGE_ERRORS):  # a mark can wait ~6 s, then republished at start
                self._step(mark_all=True)

    @property
    def inflight(self) -> int:
        return len(self._window)

    def state(self) -> OutboxState:
        return outbox_state(self.terminal, self.last_error)

    # -- the relay thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except STORAGE_ERRORS as exc:
                log.error("outbox relay: storage error, retrying: %s", exc)
                self._stop.wait(1.0)
            except Exception:
                log.exception("outbox relay step failed; retrying")
                self._stop.wait(1.0)
            in_memory = not self._window.idle or bool(self._acked) or bool(self._answers.qsize())
            self._wake.wait(timeout=self.sweep.wait(self._timer(), in_memory))
            self._wake.clear()

    def run_once(self) -> None:
        """One relay step on the caller's thread (tests, benchmarks): reads, marks every PUBACK."""
        self._due = True
        self._step(mark_all=True)

    def _step(self, *, mark_all: bool = False) -> None:
        """Answers in, the freed window refilled, and only then the fsynced mark of the batch.

        Marking first kept the window empty for a whole commit per PUBACK batch: the broker sat idle
        during every fsync (drain 1,083 req/s vs raw paho 5,153, 3,000-request backlog). PUBACKed
        rows stay in the window's `ids` until marked, so they are never published twice for that.
        """
        with self._lock:
            self._record_answers()
            now = self._timer()
            if self.sweep.read_due(now, self._window, self.clock):
                self._due = True
            if self._republish:  # under the lock: what is in the window now is due after its mark
                self._republish, self._reconnect_cutoff = False, self.clock()
                self._window.republish_in_flight()
            if self.publisher.connected and self._due:
                self._due = False
                self._publish_due()
            # Left to the worker's next group (never more than a window's worth: a drain has no
            # group) unless none came within MARK_WITHIN_S or a capped read waits (relay_sweep.py).
            full = len(self._acked) >= self.window
            if self._marks_held and not full:
                acked = []
            elif mark_all or full or self._capped or not self.sweep.leave_marks(now):
                acked, self._acked = self._acked, []
                self.sweep.taken()
            else:
                acked = []
        if not acked:
            return
        try:
            # Outside the lock: the worker's `publish_fresh` must not wait for this write turn.
            self._mark_published(acked)
        except BaseException:
            with self._lock:
                self._acked = acked + self._acked  # marked on a later step, never lost
                self.sweep.handed_back()
            raise
        with self._lock:
            self._released(acked)
        self._wake.set()

    def _released(self, request_ids: list[str]) -> None:
        """Marked rows leave the window. Unmarked PUBACKed rows fill the outbox reads (still pending), so
        their mark is what says "read again" (drain bench: 3,750 -> 5,900 req/s); so does the mark of
        a row in flight at a `republish_unanswered` (due again though its mark is after the cutoff)."""
        if self._window.release(request_ids) or self._capped:
            self._due = True

    def _publish_due(self) -> None:
        free = self._window.free
        self._capped = free <= 0
        if self._capped:
            return
        now = self.clock()
        self._window.forget_lost(now, self.republish_after.total_seconds())
        backlog_free = self._window.backlog_free()
        stale_before = now - self.republish_after
        if self._reconnect_cutoff is not None:
            stale_before = max(stale_before, self._reconnect_cutoff)
        limit = free + len(self._window.ids) + len(self._window.held)
        # Live loops' rows first, then the backlog: `outbox_sql.hot_rows` says why and what it costs.
        with self.terminal.db.snapshot() as sql:
            due = outbox_sql.read_due(
                sql,
                live_since=now - LIVE_WITHIN,
                stale_before=stale_before,
                limit=limit,
                probe=HOT_PROBE,
                backlog=backlog_free > 0,
                again=self._window.due_again,
            )
        hot, stale, pending = due.hot, due.stale, due.pending
        # A hot row comes back in `pending` too. Rows in flight are skipped before they are parsed
        # (the first `window` pending rows are re-read each step; parsing was ~5 % of the thread).
        tagged = [(r, True) for r in hot] + [(r, False) for r in (*stale, *pending)]
        # Capped: this read may have left due rows behind, so the next answer or mark must bring
        # another. Conservative (an extra read costs little, a missed one waits for the sweep): a
        # query cut at its LIMIT, or a window or backlog share used up (before it began, too).
        truncated = max(len(hot), len(stale), len(pending)) >= limit
        for r, live in tagged:
            if free <= 0 or (not live and backlog_free <= 0):
                break
            request_id: str = r[0]
            if request_id in self._window.ids:
                continue
            if not self._window.ready(request_id, now):
                continue
            self._publish_row(r, now, live=live)
            free -= 1
            if not live:
                backlog_free -= 1
        self._capped = truncated or free <= 0 or backlog_free <= 0

    def _publish_row(self, r: Row, now: datetime, *, live: bool) -> None:
        mid = self.publisher.publish(self.topic, self._messages.payload(r), 1, False)
        self._window.sent(mid, r[0], now, live=live)

    def _record_answers(self) -> None:
        while True:
            try:
                mid, ok, reason, at = self._answers.get_nowait()
            except queue.Empty:
                break
            request_id = self._window.answered(mid)
            if request_id is None:
                continue  # an availability heartbeat, or an answer from before a restart
            if self._capped:
                # A slot freed for a row the last step had to leave behind. The relay thread reads
                # it; wake it, since the inbound worker may be the one taking this answer.
                self._due = True
                self._wake.set()
            if ok:
                self._acked.append(request_id)  # leaves the window's ids once marked published
                self.sweep.acked(at)
            else:
                self.last_error = f"broker refused request {request_id[:8]}: {reason}"
                self._window.hold(request_id, self.clock() + RETRY_REFUSED_AFTER)
                log.error("%s; it stays queued and is retried", self.last_error)

    def _mark_published(self, request_ids: list[str]) -> None:
        """One unit of work for a batch of PUBACKs, without fsync: a mark lost to a power cut only
        means the row is published again with the same id, which upstream drops, and its card shows
        queued until then; an fsync per PUBACK batch held the write turn the next signal group
        waited for."""
        with self.terminal.db.unit_of_work(fsync=False) as uow:
            moved = self.mark_in(uow, request_ids)
        self._after_mark(request_ids, moved)
