"""The supermarket peer's status outbox: every answer travels store-and-forward, like a request.

The peer's `answer` rows (its own SQLite file) are the outbox. A row is `sent` only when the broker
answered its QoS 1 PUBLISH with a success (PUBACK), never when it was handed to paho: paho keeps its
queue in memory, and a link lost with answers in flight lost them for good. Measured before this
module (issue 16): a bridged line with the link killed and frozen lost 75 of ~900 statuses, and 45
cards stayed at accepted/picked. Now an answer not acknowledged is handed over again after every
reconnect, and the terminal's status query (services/reconcile.py) covers the last hop the PUBACK
cannot see (the line side of a bridge).

At most `window` answers are with paho at a time; a refused one (an ACL, a quota) waits
`RETRY_REFUSED_S` before it is tried again. PUBACKs arrive on paho's thread and are only queued
there; the peer's own thread applies them (`step`), so nothing here takes a lock inside paho.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from kanban_terminal.adapters.mqtt_client import MqttLink, utc_text
from kanban_terminal.adapters.wire import MAX_QUERY_BYTES, StatusQueryMessage, validate
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.topics import status_topic_for

log = logging.getLogger(__name__)

RETRY_REFUSED_S = 30.0
"""A status the broker refused is tried again after this pause (an ACL fix needs no restart)."""


class StatusOutbox:
    """Hands due answers to the link and marks them sent on the broker's PUBACK."""

    def __init__(self, db: sqlite3.Connection, link: MqttLink, *, window: int = 100):
        self.db = db
        self.link = link
        self.window = window
        self._handed: dict[int, tuple[str, str]] = {}
        """mid -> (request id, stage) handed to paho and not answered yet."""
        self._handed_keys: set[tuple[str, str]] = set()
        self._refused_until: dict[tuple[str, str], float] = {}
        self._answers: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._reconnected = threading.Event()
        self.acknowledged = 0
        self.refused = 0

    # paho's thread: hand over only.
    def on_published(self, mid: int, ok: bool, reason: str) -> None:
        self._answers.put((mid, ok, reason))

    def on_connected(self, session_present: bool) -> None:
        self._reconnected.set()

    @property
    def in_flight(self) -> int:
        return len(self._handed)

    def step(self, now: float | None = None, on_acked: Callable[[str, str], None] | None = None) -> int:
        """Apply PUBACKs, then hand over due answers while connected. Returns how many were handed."""
        now = time.time() if now is None else now
        self._apply_answers(now, on_acked)
        if self._reconnected.is_set():
            # After a reconnect nothing handed before is trusted: paho may re-send some of it itself
            # (a repeated status is dropped by the terminal), the rest would be lost otherwise.
            self._reconnected.clear()
            self._handed.clear()
            self._handed_keys.clear()
        if not self.link.connected:
            return 0
        return self._send_due(now)

    def next_due(self, now: float) -> float | None:
        """When `step` will have something to hand over by the clock alone: the earliest answer due
        after `now`, or a refused one's retry; None when nothing waits on time. What is due already
        waits for a PUBACK (room in the window) or a reconnect, and both wake the peer."""
        row = self.db.execute("SELECT min(due) FROM answer WHERE sent = 0 AND due > ?", (now,)).fetchone()
        # Only retries still to come: one already past waits for the window or a reconnect (both
        # wake the peer), or its answer is gone (a cancel deleted it), and counting it made the
        # peer's thread spin at its 1 ms floor (review of branch claimcancel).
        times = [t for t in (row[0], *self._refused_until.values()) if t is not None and t > now]
        return min(times) if times else None

    def _apply_answers(self, now: float, on_acked: Callable[[str, str], None] | None) -> None:
        acked: list[tuple[str, str]] = []
        while True:
            try:
                mid, ok, reason = self._answers.get_nowait()
            except queue.Empty:
                break
            key = self._handed.pop(mid, None)
            if key is None:
                continue  # a publish of an earlier connection, already handed again
            self._handed_keys.discard(key)
            if ok:
                acked.append(key)
            else:
                self.refused += 1
                self._refused_until[key] = now + RETRY_REFUSED_S
                log.warning("status %s of request %s refused by the broker: %s", key[1], key[0], reason)
        if not acked:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for request_id, stage in acked:
                self.db.execute(
                    "UPDATE answer SET sent = 1 WHERE request_id = ? AND stage = ?", (request_id, stage)
                )
                self.db.execute(
                    "UPDATE request SET last_status = ? WHERE id = ? "
                    "AND ? IN ('accepted', 'picked', 'shipped') "
                    "AND (last_status IS NULL OR (last_status != 'cancelled' AND ? > last_status))",
                    (stage, request_id, stage, stage),  # accepted < picked < shipped, as text too
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.acknowledged += len(acked)
        if on_acked is not None:
            for request_id, stage in acked:
                on_acked(request_id, stage)

    def _send_due(self, now: float) -> int:
        room = self.window - len(self._handed)
        if room <= 0:
            return 0
        rows = self.db.execute(
            "SELECT a.request_id, a.stage, a.eta, r.topic, r.card, r.loop FROM answer a "
            "JOIN request r ON r.id = a.request_id WHERE a.sent = 0 AND a.due <= ? ORDER BY a.due LIMIT ?",
            (now, room + len(self._handed_keys) + len(self._refused_until)),
        ).fetchall()
        handed = 0
        for request_id, stage, eta, topic, card, loop in rows:
            key = (request_id, stage)
            if key in self._handed_keys or self._refused_until.get(key, 0.0) > now:
                continue
            self._refused_until.pop(key, None)
            if handed >= room:
                break
            payload = {
                "v": 1,
                "id": str(uuid.uuid4()),
                "request_id": request_id,
                "status": stage,
                "at": utc_text(datetime.now(UTC)),
                "eta": utc_text(datetime.fromtimestamp(eta, UTC)) if eta else None,
                "card": card,
                "loop": loop,
                "by": self.link.client_id,
            }
            if stage == "at_risk":
                payload["reason"] = "carrier capacity short (simulated)"
            mid = self.link.publish(status_topic_for(topic), json.dumps(payload).encode(), 1)
            self._handed[mid] = key
            self._handed_keys.add(key)
            handed += 1
        return handed

    def resend_current(self, cur: sqlite3.Cursor, request_id: str) -> bool:
        """Answer `request_id` again with its current stage (a duplicate request or a status query).

        Returns False when there is nothing to answer yet (no stage acknowledged so far: the due one
        goes out by itself)."""
        cur.execute(
            "UPDATE answer SET sent = 0 WHERE request_id = ? AND stage = "
            "(SELECT last_status FROM request WHERE id = ?)",
            (request_id, request_id),
        )
        return cur.rowcount > 0

    def answer_query(self, payload: bytes) -> int | str:
        """A terminal's status query: answer again, in one transaction, every request of it this peer
        holds a stage of. Returns how many were answered, or why the query is refused."""
        query = validate(StatusQueryMessage, payload, MAX_QUERY_BYTES)
        if isinstance(query, str):
            return query
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            answered = sum(self.resend_current(cur, request_id) for request_id in query.request_ids)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return answered


def schedule_warnings(cur: sqlite3.Cursor, s: UpstreamSettings, n: int, request_id: str, now: float) -> None:
    """Demo and tests (`delay_every`, `at_risk_every`): warn early about the `n`th request. A delayed
    one really ships `delay_s` later, and its new ETA says so. Idempotent: a request is scheduled
    again when its claim comes back."""
    if s.delay_every and n % s.delay_every == 0:
        eta = now + s.ship_after_s + s.delay_s + s.transit_s
        cur.execute(
            "INSERT OR IGNORE INTO answer (request_id, stage, due, eta) VALUES (?, 'delayed', ?, ?)",
            (request_id, now + s.accept_after_s, eta),
        )
        if cur.rowcount == 1:
            cur.execute(
                "UPDATE answer SET due = due + ?, eta = eta + ? WHERE request_id = ? AND stage = 'shipped'",
                (s.delay_s, s.delay_s, request_id),
            )
    if s.at_risk_every and n % s.at_risk_every == 0:
        cur.execute(
            "INSERT OR IGNORE INTO answer (request_id, stage, due) VALUES (?, 'at_risk', ?)",
            (request_id, now + s.accept_after_s),
        )
