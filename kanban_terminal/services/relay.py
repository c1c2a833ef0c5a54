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
  first, each still in seq order, then the backlog in rowid (oldest first) order. See `_hot_rows`.
* At most `window` rows are in paho's memory at a time; the outbox is the only durable queue
  (finding 6). The backlog's share of that window follows the broker's answer rate (`_backlog_cap`).
  The relay never re-publishes because `publish()` returned an error code (finding 4): it tracks
  mids and waits for the broker's answer.
* The PUBACK callback runs on paho's thread while paho holds its own lock, so it only puts the answer
  on a queue; taking our lock there could deadlock against a publish() here (paho #226).
* Two threads publish: the relay thread, and the inbound worker, which hands paho the requests its
  signal group raised right after the commit (`publish_fresh`) and marks PUBACKs inside its next
  group (`take_acked`); the relay thread reads the outbox only when a row may be due (`_due`) or on
  its sweep. `_lock` keeps the in-memory state and the order of publishes.

It must not import paho: it talks to a `Publisher` (the MQTT link, or a test double).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any, Protocol

from sqlalchemy import Connection, case
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, func, select

from kanban_terminal.adapters.topics import LineTopics
from kanban_terminal.adapters.wire import RequestMessage
from kanban_terminal.domain.cards import CardEvent, CardState, Transition, transition
from kanban_terminal.services.events import CardsChanged, RequestRaised
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.scan_repo import driver
from kanban_terminal.storage.tables import RequestRow
from kanban_terminal.storage.types import from_text, to_text

log = logging.getLogger(__name__)

RETRY_REFUSED_AFTER = timedelta(seconds=30)
"""A request the broker refused is tried again after this pause (an ACL fix needs no restart)."""

LIVE_WITHIN = timedelta(seconds=10)
"""A pending request raised this recently is live: its loop goes out ahead of an outage's backlog."""

HOT_PROBE = 16
"""How many of the newest pending rows are looked at to find live loops (bounds the per-step cost)."""

BACKLOG_QUEUE_S = 0.2
"""Keep no more backlog in flight than the broker answers in this long (see `_backlog_cap`)."""

MIN_BACKLOG_INFLIGHT = 20
"""The backlog's share of the window never drops below this (paho's own default window)."""

ACK_RATE_SPAN_S = 0.5
"""The broker's answer rate is counted over the last this many seconds."""

SWEEP_S = 1.0
"""The outbox is read at least this often even when nothing says a row is due: rows going stale
(`republish_after`), refused rows whose pause is over, and rows another process wrote (the `scan`
CLI beside a running terminal) are found that way."""


class Publisher(Protocol):
    @property
    def connected(self) -> bool: ...

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int: ...


def utc_text(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_OUTBOX_COLUMNS = (
    "id, loop_id, loop_seq, card_id, part_number, quantity, station, point_of_use, source, "
    "raised_at, due_at, publish_count"
)


@dataclass(frozen=True)
class OutboxRow:
    """The columns of an outbox row that its request message needs (read in plain SQL)."""

    id: str
    loop_id: str
    loop_seq: int
    card_id: str
    part_number: str
    quantity: int
    station: str
    point_of_use: str
    source: str
    raised_at: datetime
    due_at: datetime
    publish_count: int

    @classmethod
    def from_sql(cls, r: tuple[Any, ...]) -> OutboxRow:
        return cls(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], from_text(r[9]), from_text(r[10]), r[11]
        )


def request_payload(terminal: Terminal, row: RequestRow | OutboxRow) -> bytes:
    """The request message (docs/schema/request.json), written through its wire model; `id` is the
    idempotency key."""
    cfg = terminal.config
    message = RequestMessage(
        v=1,
        id=row.id,
        site=cfg.site.id,
        line=cfg.line.id,
        terminal=cfg.terminal.id,
        loop=row.loop_id,
        loop_seq=row.loop_seq,
        card=row.card_id,
        part=row.part_number,
        quantity=row.quantity,
        station=row.station,
        point_of_use=row.point_of_use,
        source=row.source,
        raised_at=utc_text(row.raised_at),
        due_at=utc_text(row.due_at),
        attempt=row.publish_count + 1,
    )
    return message.model_dump_json().encode()


def _pending_of_loop(db: sqlite3.Connection, loop: str, limit: int) -> list[tuple[Any, ...]]:
    """A loop's first `limit` pending rows in `loop_seq` order (ix_request_outbox)."""
    rows: list[tuple[Any, ...]] = db.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM replenishment_request WHERE publish_state = 'pending' "
        "AND loop_id = ? AND closed_at IS NULL ORDER BY loop_seq LIMIT ?",
        (loop, limit),
    ).fetchall()
    return rows


@dataclass(frozen=True)
class FreshRows:
    """Requests a transaction just raised, with every pending row of their loops (`read_fresh`)."""

    ids: frozenset[str]
    by_loop: list[list[tuple[Any, ...]]]
    """Per loop, its pending rows in `loop_seq` order (`_OUTBOX_COLUMNS`)."""


def read_fresh(db: sqlite3.Connection, raised: list[tuple[str, str]], limit: int) -> FreshRows:
    """Inside the transaction that raised `raised` (request id, loop id): the pending rows of those
    loops, at most `limit` each (a loop with a deeper backlog leaves its new rows to the relay)."""
    loops = sorted({loop for _, loop in raised})
    by_loop = [_pending_of_loop(db, loop, limit) for loop in loops]
    return FreshRows(frozenset(request_id for request_id, _ in raised), by_loop)


@dataclass(frozen=True)
class OutboxState:
    """What the status bar shows about the outbox."""

    queued: int
    """Requests upstream has not answered yet (pending or published)."""
    unsent: int
    """Requests the broker has not acknowledged yet (pending)."""
    oldest_at: datetime | None
    """When the oldest unanswered request was raised."""
    last_error: str
    """The last broker refusal, empty when none."""


def outbox_state(terminal: Terminal, last_error: str = "") -> OutboxState:
    """Count unanswered requests and find the oldest (one query on the outbox index)."""
    with terminal.db.reading() as session:
        row = session.exec(
            select(
                func.count(),
                func.sum(case((col(RequestRow.publish_state) == "pending", 1), else_=0)),
                func.min(RequestRow.raised_at),
            ).where(col(RequestRow.publish_state) != "done", col(RequestRow.closed_at).is_(None))
        ).one()
    count, unsent, oldest = row
    oldest_at: datetime | None = oldest
    return OutboxState(int(count or 0), int(unsent or 0), oldest_at, last_error)


class Relay:
    """Drains the outbox through a `Publisher` in a background thread."""

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
        self.last_error = ""
        self.published_total = 0
        self.mark_batches = 0
        """Transactions of the relay thread that marked PUBACKed rows (benchmarks: requests per batch)."""
        self._inflight: dict[int, str] = {}
        """mid -> request id (under `_lock`, like the rest of this state)."""
        self._inflight_ids: set[str] = set()
        self._acked: list[str] = []
        """PUBACKed request ids not yet marked published (a failed mark is retried, not lost)."""
        self._held: dict[str, datetime] = {}
        """Refused request id -> when it may be tried again."""
        self._answers: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reconnect_cutoff: datetime | None = None
        """Rows last published before the latest reconnect are due again (the broker may lost them)."""
        self._inflight_since: dict[int, datetime] = {}
        self._live_mids: set[int] = set()
        """In-flight mids of live loops' rows (`_hot_rows`): they may use the whole window."""
        self._timer = timer
        self._answered_at: deque[float] = deque()
        """Monotonic times of the broker's answers in the last ACK_RATE_SPAN_S."""
        self._thread: threading.Thread | None = None
        self._due = True
        """A row may be waiting to go out: set by a new request, a reconnect, or an answer freeing a
        slot that a capped step wanted. Without it, only the sweep reads the outbox: reading it on
        every PUBACK, when the inbound worker had already published the new rows (`publish_fresh`),
        took the GIL from that worker about once per request."""
        self._capped = False
        """The last read of the outbox left due rows behind for want of window."""
        self._next_sweep = 0.0
        self._marks_held = False
        self._lock = threading.Lock()
        """Guards the in-memory state above and the order of publishes: the relay thread and the
        inbound worker (`publish_fresh`, `take_acked`, `marked`) both use it. Never held while
        waiting for the write lock, and paho's callbacks never take it (they only queue), so it
        cannot deadlock."""
        self._unsubscribe = terminal.bus.subscribe(self._on_event)

    # -- called from other threads -----------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def on_published(self, mid: int, ok: bool, reason: str) -> None:
        """The broker answered a publish (paho's thread): hand it over, never block."""
        self._answers.put((mid, ok, reason))
        self._wake.set()

    def on_connected(self, session_present: bool) -> None:
        """After any (re)connect, re-publish what upstream has not answered: the broker may have
        lost it (a crash between autosaves) or never forwarded it."""
        self._reconnect_cutoff = self.clock()
        self._due = True
        self._wake.set()

    def publish_fresh(self, fresh: FreshRows) -> None:
        """Publish requests just committed, on the caller's thread, without reading the outbox:
        the inbound worker calls this right after the commit of a group that raised requests.

        Why: handed to the relay thread, a fresh request waited for it to wake, to finish marking
        the previous PUBACKs, and to read the outbox (traced at 500 signals/s: commit -> publish
        p50 2.2 ms, p90 3.9 ms; the worker's group 1.7 ms).
        Order per loop holds: `fresh` holds every pending row of the loops, read inside the committing
        transaction, and a loop's rows go out only while every older one is already with paho. A row
        that cannot be placed (an older one waits, the window is full, no link) is left to the relay
        thread, which reads the outbox as before; that costs latency, never order or a request.
        """
        blocked = False
        with self._lock:
            self._record_answers()
            free = self.window - len(self._inflight)
            now = self.clock()
            for rows in fresh.by_loop:
                for r in rows:
                    request_id: str = r[0]
                    if request_id in self._inflight_ids:
                        continue
                    # Not ours and not with paho: backlog, a refused row, or one marked published
                    # since the read. Only the relay's own read can tell, so it decides.
                    if request_id not in fresh.ids or free <= 0 or not self.publisher.connected:
                        blocked = True
                        break
                    self._publish_row(r, now, live=True)
                    free -= 1
        if blocked:
            self._due = True
        if blocked or self._acked:
            self._wake.set()  # the relay thread marks PUBACKs; this thread must not wait for the disk

    def hold_marks(self, held: bool) -> None:
        """The inbound worker is busy with a group (True) or done (False). While it is busy, PUBACKs
        wait and go into its next group's transaction (`take_acked`) instead of a write turn of
        their own that the group would wait for (traced at 500 signals/s: ~1,200 mark transactions,
        the worker waiting 0.8 ms p50 for each turn)."""
        self._marks_held = held
        if not held and self._acked:
            self._wake.set()

    def take_acked(self) -> list[str]:
        """The PUBACKed rows not marked yet, for the caller to mark (`mark_in`) and then report
        (`marked`). Until then they stay in flight, so they are never published twice."""
        with self._lock:
            self._record_answers()
            acked, self._acked = self._acked, []
        return acked

    def marked(self, request_ids: list[str], moved: list[str], *, committed: bool) -> None:
        """The transaction that marked `take_acked`'s rows committed, or was rolled back (then they
        are marked again later)."""
        with self._lock:
            if committed:
                self._inflight_ids.difference_update(request_ids)
                self._due_after_mark()
            else:
                self._acked = request_ids + self._acked
        if committed:
            self._after_mark(request_ids, moved)
        if not committed or self._due:
            self._wake.set()

    def _on_event(self, event: object) -> None:
        # A request from `publish_fresh` is with paho by now; others (a scan) need the relay.
        if isinstance(event, RequestRaised) and event.request_id not in self._inflight_ids:
            self._due = True
            self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._unsubscribe()
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def state(self) -> OutboxState:
        return outbox_state(self.terminal, self.last_error)

    # -- the relay thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except SQLAlchemyError as exc:
                log.error("outbox relay: storage error, retrying: %s", exc)
                self._stop.wait(1.0)
            except Exception:
                log.exception("outbox relay step failed; retrying")
                self._stop.wait(1.0)
            self._wake.wait(timeout=1.0)
            self._wake.clear()

    def run_once(self) -> None:
        """One relay step on the caller's thread (tests and benchmarks); always reads the outbox."""
        self._due = True
        self._step()

    def _step(self) -> None:
        """Answers in, the freed window refilled, and only then the fsynced mark of the batch.

        Marking first kept the window empty for a whole commit per PUBACK batch: the broker sat idle
        during every fsync (drain 1,083 req/s vs raw paho 5,153, 3,000-request backlog). PUBACKed
        rows stay in `_inflight_ids` until marked, so they are never published twice for that.
        """
        with self._lock:
            self._record_answers()
            now = self._timer()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_S
                self._due = True
            if self.publisher.connected and self._due:
                self._due = False
                self._publish_due()
            # Held for the worker's next group, but never more than a window's worth: a worker busy
            # with upstream statuses alone (a drain's answers) has no group to put them in.
            if self._marks_held and len(self._acked) < self.window:
                acked = []
            else:
                acked, self._acked = self._acked, []
        if not acked:
            return
        try:
            # Outside the lock: the worker's `publish_fresh` must not wait for this write turn.
            self._mark_published(acked)
        except BaseException:
            with self._lock:
                self._acked = acked + self._acked  # marked on a later step, never lost
            raise
        with self._lock:
            self._inflight_ids.difference_update(acked)
            self._due_after_mark()
        self._wake.set()

    def _due_after_mark(self) -> None:
        """Rows PUBACKed but not yet marked fill the outbox reads (they are still pending there), so
        a read can come back full of them and publish nothing; with nothing left in flight, no answer
        would follow to say "read again". Their mark is that signal. (Drain bench: 3,750 -> 5,900
        req/s; the relay thread sat in its 1 s sweep wait.)"""
        if self._capped:
            self._due = True

    def _publish_due(self) -> None:
        free = self.window - len(self._inflight)
        self._capped = free <= 0
        if self._capped:
            return
        now = self.clock()
        self._forget_lost(now)
        backlog_free = min(free, self._backlog_cap() - (len(self._inflight) - len(self._live_mids)))
        stale_before = now - self.republish_after
        if self._reconnect_cutoff is not None:
            stale_before = max(stale_before, self._reconnect_cutoff)
        limit = free + len(self._inflight_ids) + len(self._held)
        stale: list[tuple[Any, ...]] = []
        pending: list[tuple[Any, ...]] = []
        # Plain SQL on the read connection: loading SQLModel rows cost ~2.4 s of the relay's 6.4 s
        # in a 3,000-signal burst (cProfile), competing for the GIL with the inbound worker.
        with self.terminal.db.read_engine.connect() as conn:
            db = driver(conn)
            db.execute("BEGIN")  # one snapshot for all queries, as the ORM session had
            hot = self._hot_rows(db, now, limit)
            if backlog_free > 0:
                # Separate queries, each served by an index in rowid order (ix_request_publish_state*):
                # an OR of them made SQLite sort the whole outbox on every step (measured: 536 req/s).
                stale = db.execute(
                    f"SELECT {_OUTBOX_COLUMNS} FROM replenishment_request WHERE publish_state = 'published' "
                    "AND last_published_at < ? AND closed_at IS NULL ORDER BY rowid LIMIT ?",
                    (to_text(stale_before), limit),
                ).fetchall()
                pending = db.execute(
                    f"SELECT {_OUTBOX_COLUMNS} FROM replenishment_request WHERE publish_state = 'pending' "
                    "AND closed_at IS NULL ORDER BY rowid LIMIT ?",
                    (limit,),
                ).fetchall()
            db.execute("COMMIT")
        # A hot row also comes back in `pending`; once handed to paho it is in _inflight_ids and
        # skipped there. Rows already in flight are skipped before they are parsed: the first
        # `window` pending rows are re-read every step, and parsing them was ~5 % of the relay thread.
        tagged = [(r, True) for r in hot] + [(r, False) for r in (*stale, *pending)]
        # Capped: this read may have left due rows behind, so the next answer or mark must bring
        # another. Conservative on purpose (an extra read costs little, a missed one waits for the
        # sweep): a query cut at its LIMIT, or a window or backlog share used up (also before it
        # began: then the backlog was not even read).
        truncated = max(len(hot), len(stale), len(pending)) >= limit
        for r, live in tagged:
            if free <= 0 or (not live and backlog_free <= 0):
                break
            request_id: str = r[0]
            if request_id in self._inflight_ids:
                continue
            held_until = self._held.get(request_id)
            if held_until is not None and held_until > now:
                continue
            self._held.pop(request_id, None)
            self._publish_row(r, now, live=live)
            free -= 1
            if not live:
                backlog_free -= 1
        self._capped = truncated or free <= 0 or backlog_free <= 0

    def _publish_row(self, r: tuple[Any, ...], now: datetime, *, live: bool) -> None:
        row = OutboxRow.from_sql(r)
        mid = self.publisher.publish(self.topic, request_payload(self.terminal, row), 1, False)
        self._inflight[mid] = row.id
        self._inflight_since[mid] = now
        self._inflight_ids.add(row.id)
        if live:
            self._live_mids.add(mid)

    def _backlog_cap(self) -> int:
        """How many backlog rows may be in flight: what the broker answers in BACKLOG_QUEUE_S.

        Why: the broker reads one connection in order, so a live request waits behind every backlog
        PUBLISH already on the wire, however early the relay hands it over. With the plant broker
        (a database save per queued message while a persistent consumer lags) the broker answered
        ~300-600 a second in the soak, so a full window of 200 meant 0.3-0.7 s of queue in front of
        every live request (soak, 10,000 backlog: live p50 0.31 s, p99 0.71 s). A slow broker is
        kept just as busy by fewer rows; a fast one (thousands a second) still gets the whole window.
        """
        now = self._timer()
        while self._answered_at and self._answered_at[0] < now - ACK_RATE_SPAN_S:
            self._answered_at.popleft()
        answered_in_span = len(self._answered_at) * BACKLOG_QUEUE_S / ACK_RATE_SPAN_S
        return max(MIN_BACKLOG_INFLIGHT, min(self.window, int(answered_in_span)))

    def _hot_rows(self, db: sqlite3.Connection, now: datetime, limit: int) -> list[tuple[Any, ...]]:
        """Pending rows of the loops that have a live request: each loop in `loop_seq` order, the
        loops interleaved, all ahead of the backlog.

        Why: after an outage the backlog went out oldest first and a request raised during the drain
        waited behind all of it (soak, 20,000 backlog: live p50 19.5 s, p99 31 s; issue 7 asks 1 s).
        Why not simply newest first: the per-loop order is the promise (issue 3; upstream reads gaps
        from `loop_seq`), so a live request never overtakes older rows of its own loop, only other
        loops' backlog, about which nothing is promised. The cost is bounded: a card has at most one
        open request, so at most `cards - 1` rows of its loop can be ahead of it. The backlog cannot
        starve either: live loops are found among the newest HOT_PROBE pending rows only, and live
        traffic (a line's real rate) is far below the drain rate.

        Live means raised within LIVE_WITHIN of now; the newest pending rows are probed by rowid
        (index walk from the end, a few rows), never by a scan of the whole outbox.
        """
        newest = db.execute(
            "SELECT loop_id, raised_at FROM replenishment_request WHERE publish_state = 'pending' "
            "AND closed_at IS NULL ORDER BY rowid DESC LIMIT ?",
            (HOT_PROBE,),
        ).fetchall()
        live_since = to_text(now - LIVE_WITHIN)  # stored timestamps sort as text (storage/types.py)
        loops = list(dict.fromkeys(loop for loop, raised_at in newest if raised_at >= live_since))
        per_loop = [_pending_of_loop(db, loop, limit) for loop in loops]
        # Round robin: one live loop with a deep backlog must not hold back another loop's live row.
        return [r for batch in zip_longest(*per_loop) for r in batch if r is not None]

    def _forget_lost(self, now: datetime) -> None:
        """A publish with no broker answer for `republish_after` (paho dropped it, or a PUBACK got
        lost on a live link, which MQTT never retries: paho.mqtt.c#651) frees its window slot so the
        row is published again."""
        for mid, since in list(self._inflight_since.items()):
            if now - since > self.republish_after:
                request_id = self._inflight.pop(mid, None)
                self._inflight_since.pop(mid, None)
                self._live_mids.discard(mid)
                if request_id is not None:
                    self._inflight_ids.discard(request_id)

    def _record_answers(self) -> None:
        while True:
            try:
                mid, ok, reason = self._answers.get_nowait()
            except queue.Empty:
                break
            request_id = self._inflight.pop(mid, None)
            self._inflight_since.pop(mid, None)
            self._live_mids.discard(mid)
            if request_id is None:
                continue  # an availability heartbeat, or an answer from before a restart
            if self._capped:
                # A slot freed for a row the last step had to leave behind. The relay thread reads
                # it; wake it, since the inbound worker may be the one taking this answer.
                self._due = True
                self._wake.set()
            self._answered_at.append(self._timer())
            if ok:
                self._acked.append(request_id)  # leaves _inflight_ids once marked published
            else:
                self._inflight_ids.discard(request_id)
                self.last_error = f"broker refused request {request_id[:8]}: {reason}"
                self._held[request_id] = self.clock() + RETRY_REFUSED_AFTER
                log.error("%s; it stays queued and is retried", self.last_error)

    def _mark_published(self, request_ids: list[str]) -> None:
        """One transaction for a batch of PUBACKs: rows published, queued cards moved to sent.

        Plain SQL on the driver connection of a Core unit of work: the ORM version cost ~1 ms per
        row (drain 536/s); the ORM session and one INSERT per log row were still ~30 % of the relay
        thread in a 10,000-request drain (py-spy), so the log rows are chained in memory and
        inserted with a few multi-row INSERTs (`card_log.BufferedLog`).
        """
        with self.terminal.db.write_connection(fsync=False) as conn:
            moved = self.mark_in(conn, request_ids)
        self._after_mark(request_ids, moved)

    def mark_in(self, conn: Connection, request_ids: list[str]) -> list[str]:
        """Mark PUBACKed rows published inside the caller's write transaction; returns the cards
        moved to sent. The relay's own marks and the inbound worker's groups (`take_acked`) use it.

        Without fsync when the relay marks alone (`write_connection(fsync=False)`): a mark lost to a
        power cut only means the row is published again with the same id, which upstream drops, and
        its card shows queued until then; an fsync per PUBACK batch held the write turn the next
        signal group waited for.
        """
        now = self.clock()
        now_text = to_text(now)
        moved: list[str] = []
        marks = ",".join("?" * len(request_ids))
        db = driver(conn)
        chain = card_log.BufferedLog(db)  # reads the chain's tail under the write lock
        db.execute(
            "UPDATE replenishment_request SET publish_count = publish_count + 1, "
            "last_published_at = ?, publish_state = CASE publish_state WHEN 'pending' "
            "THEN 'published' ELSE publish_state END, status = CASE status WHEN 'queued' "
            f"THEN 'sent' ELSE status END WHERE id IN ({marks})",
            (now_text, *request_ids),
        )
        # Through the request's card_id (primary keys both ways): card.open_request_id has no
        # index, and `WHERE open_request_id IN (...)` scanned the whole card table once per
        # PUBACK batch (py-spy, 20,000-request soak drain: ~16 % of the relay thread).
        cards = db.execute(
            "SELECT c.id, c.loop_id, c.state, c.open_request_id FROM replenishment_request r "
            f"JOIN card c ON c.id = r.card_id WHERE r.id IN ({marks}) "
            "AND c.open_request_id = r.id AND c.state = 'queued'",
            tuple(request_ids),
        ).fetchall()
        for card_id, loop_id, state, request_id in cards:
            step = transition(card_id, CardState(state), CardEvent.REQUEST_SENT, now)
            if not isinstance(step, Transition):
                continue
            chain.append(
                card_log.LogEntry(
                    occurred_at=now,
                    recorded_at=now,
                    event=step.event.value,
                    card_id=card_id,
                    loop_id=loop_id,
                    from_state=step.from_state.value,
                    to_state=step.to_state.value,
                    request_id=request_id,
                    source="relay",
                    detail="broker acknowledged",
                )
            )
            moved.append(card_id)
        if moved:
            chain.write()
            card_marks = ",".join("?" * len(moved))
            db.execute(
                f"UPDATE card SET state = 'sent', state_since = ? WHERE id IN ({card_marks})",
                (now_text, *moved),
            )
        return moved

    def _after_mark(self, request_ids: list[str], moved: list[str]) -> None:
        self.published_total += len(request_ids)
        self.mark_batches += 1
        if self.last_error and not self._held:
            self.last_error = ""
        if moved:
            self.terminal.bus.publish(CardsChanged(tuple(moved)))
