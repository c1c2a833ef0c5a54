"""A supermarket / warehouse peer that speaks the protocol: consumes requests, answers statuses.

It is what the demo delivers with and what the tests and benchmarks reconcile against, and a small
site can run it for real (`kanban-terminal upstream`). It shows what every consumer must do:

* deduplicate by request id (the terminal publishes at least once, the broker may resurrect old
  messages after a crash): a duplicate is not a new pick, it is answered with the current status;
* commit, then acknowledge (manual ack), in its own SQLite file, so a crash loses no request;
* watch each loop's `loop_seq` and log gaps (reliability goal R11);
* serve every line of a site through one subscription, and share the load with other instances via
  an MQTT 5 shared subscription (`$share/<group>/...`): a plant scales by its broker.

Answers (accepted, picked, shipped with ETA) are scheduled in the database, so a restart of the
peer neither forgets nor repeats them.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kanban_terminal.adapters.anchor_intake import keep_anchor
from kanban_terminal.adapters.mqtt_client import MqttLink, utc_text
from kanban_terminal.adapters.wire import MAX_REQUEST_BYTES, RequestCancelMessage, RequestMessage, validate
from kanban_terminal.adapters.wire.decode import parse_json_object, validate_object
from kanban_terminal.config import MqttSettings, UpstreamSettings
from kanban_terminal.domain.text import escape_bytes, escape_external
from kanban_terminal.storage.anchors import AnchorStore
from kanban_terminal.topics import site_log_anchors_filter, site_requests_filter, status_topic_for

log = logging.getLogger(__name__)

_STAGES = ("accepted", "picked", "shipped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS request (
    id TEXT PRIMARY KEY, topic TEXT NOT NULL, line TEXT NOT NULL, loop TEXT NOT NULL,
    loop_seq INTEGER NOT NULL, card TEXT NOT NULL, received_at REAL NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0, last_status TEXT
);
CREATE TABLE IF NOT EXISTS answer (
    request_id TEXT NOT NULL, stage TEXT NOT NULL, due REAL NOT NULL, eta REAL,
    sent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (request_id, stage)
);
CREATE INDEX IF NOT EXISTS ix_answer_due ON answer (sent, due);
CREATE TABLE IF NOT EXISTS loop_seq (
    line TEXT NOT NULL, loop TEXT NOT NULL, last_seq INTEGER NOT NULL, PRIMARY KEY (line, loop)
);
CREATE TABLE IF NOT EXISTS rejected_input (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, source TEXT NOT NULL, input TEXT NOT NULL, reason TEXT NOT NULL
);
"""
REJECTED_KEEP = 2000
"""Refused requests the peer keeps (newest first), like a terminal's MQTT doors."""


@dataclass(frozen=True)
class Request:
    id: str
    line: str
    loop: str
    loop_seq: int
    card: str


def parse_request(payload: bytes) -> Request | str:
    """Validate a request against the wire schema; return it or the reason. Never raises."""
    message = validate(RequestMessage, payload, MAX_REQUEST_BYTES)
    if isinstance(message, str):
        return message
    return Request(message.id, message.line, message.loop, message.loop_seq, message.card)


def parse_cancel(payload: bytes) -> Request | str | None:
    """A request cancel (a re-route, `type` = cancel) as the request it cancels, the reason it is
    refused, or None when the payload is not a cancel. Never raises."""
    data = parse_json_object(payload, MAX_REQUEST_BYTES)
    if isinstance(data, str) or data.get("type") != "cancel":
        return None
    message = validate_object(RequestCancelMessage, data)
    if isinstance(message, str):
        return message
    return Request(message.id, message.line, message.loop, 0, message.card)


class UpstreamPeer:
    """One instance of the supermarket peer; use as a context manager."""

    def __init__(
        self,
        mqtt: MqttSettings,
        site: str,
        settings: UpstreamSettings,
        db_path: Path,
        *,
        client_id: str | None = None,
    ):
        self.settings = settings
        self.site = site
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        flt = site_requests_filter(site)
        # Shared subscriptions are MQTT 5; over 3.1.1 (amqtt) one instance takes everything.
        subscription = f"$share/{settings.group}/{flt}" if mqtt.protocol == "5" else flt
        self.anchors = AnchorStore(self.db)
        """Every card-log anchor the site's terminals publish (not shared: each instance keeps all)."""
        self.link = MqttLink(
            mqtt,
            client_id or settings.id,
            subscriptions=[(subscription, 1), (site_log_anchors_filter(site), 1)],
            on_message=self._on_message,
            max_inflight=100,
        )
        self._inbox: queue.SimpleQueue[tuple[str, bytes, int, int, int] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream-peer", daemon=True)
        self.received = 0
        self.duplicates = 0
        self.gaps = 0
        self.refused = 0
        self.cancelled = 0

    def __enter__(self) -> UpstreamPeer:
        self._thread.start()
        self.link.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._inbox.put(None)
        self.link.stop()
        self._thread.join(timeout=10)
        self.db.close()

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        self._inbox.put((topic, payload, mid, qos, generation))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=0.05)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(*item)
                if self.link.connected:
                    self._send_due()
            except Exception:
                log.exception("upstream peer step failed")
                self._stop.wait(0.5)

    def _handle(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        if topic.endswith("/log_anchor"):
            keep_anchor(self.anchors, topic, payload)
            self.link.ack(mid, qos, generation)
            return
        cancel = parse_cancel(payload)
        if isinstance(cancel, Request):
            self._cancel(topic, cancel)
            self.link.ack(mid, qos, generation)
            return
        parsed = cancel if isinstance(cancel, str) else parse_request(payload)
        if isinstance(parsed, str):
            self.refused += 1
            log.warning("request refused on %s: %s", escape_external(topic, 120), parsed)
            self._keep_refused(topic, payload, parsed)
            self.link.ack(mid, qos, generation)
            return
        now = time.time()
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "INSERT OR IGNORE INTO request (id, topic, line, loop, loop_seq, card, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (parsed.id, topic, parsed.line, parsed.loop, parsed.loop_seq, parsed.card, now),
            )
            new = cur.rowcount == 1
            if new:
                self._check_seq(cur, parsed)
                s = self.settings
                ship = now + s.ship_after_s
                for stage, due in zip(
                    _STAGES, (s.accept_after_s, s.pick_after_s, s.ship_after_s), strict=True
                ):
                    cur.execute(
                        "INSERT INTO answer (request_id, stage, due, eta) VALUES (?, ?, ?, ?)",
                        (parsed.id, stage, now + due, ship + s.transit_s if stage == "shipped" else None),
                    )
                self._warn(cur, parsed.id, now)
            else:
                # A duplicate (re-publish, redelivery): no new pick; answer again with where it is,
                # so the terminal can stop re-publishing.
                cur.execute("UPDATE request SET duplicates = duplicates + 1 WHERE id = ?", (parsed.id,))
                cur.execute(
                    "UPDATE answer SET sent = 0 WHERE request_id = ? AND stage = "
                    "(SELECT last_status FROM request WHERE id = ?)",
                    (parsed.id, parsed.id),
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.received += new
        self.duplicates += not new
        self.link.ack(mid, qos, generation)

    def _warn(self, cur: sqlite3.Cursor, request_id: str, now: float) -> None:
        """Demo and tests (`delay_every`, `at_risk_every`): warn early about some requests. A delayed
        one really ships `delay_s` later, and its new ETA says so."""
        s, n = self.settings, self.received + 1
        if s.delay_every and n % s.delay_every == 0:
            cur.execute(
                "UPDATE answer SET due = due + ?, eta = eta + ? WHERE request_id = ? AND stage = 'shipped'",
                (s.delay_s, s.delay_s, request_id),
            )
            eta = now + s.ship_after_s + s.delay_s + s.transit_s
            cur.execute(
                "INSERT INTO answer (request_id, stage, due, eta) VALUES (?, 'delayed', ?, ?)",
                (request_id, now + s.accept_after_s, eta),
            )
        if s.at_risk_every and n % s.at_risk_every == 0:
            cur.execute(
                "INSERT INTO answer (request_id, stage, due) VALUES (?, 'at_risk', ?)",
                (request_id, now + s.accept_after_s),
            )

    def _cancel(self, topic: str, cancel: Request) -> None:
        """Stop serving a cancelled request (a re-route) and answer `cancelled`; a cancel of a
        request not seen yet is kept, so that request is ignored when it comes."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "INSERT OR IGNORE INTO request (id, topic, line, loop, loop_seq, card, received_at) "
                "VALUES (?, ?, ?, ?, 0, ?, ?)",
                (cancel.id, topic, cancel.line, cancel.loop, cancel.card, time.time()),
            )
            cur.execute("UPDATE request SET last_status = 'cancelled' WHERE id = ?", (cancel.id,))
            cur.execute("DELETE FROM answer WHERE request_id = ? AND sent = 0", (cancel.id,))
            cur.execute(
                "INSERT OR REPLACE INTO answer (request_id, stage, due, sent) VALUES (?, 'cancelled', ?, 0)",
                (cancel.id, time.time()),
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.cancelled += 1

    def _keep_refused(self, topic: str, payload: bytes, reason: str) -> None:
        """Keep a refused request, escaped, in the peer's own `rejected_input` (capped, newest kept).

        Without waiting for the disk: a refusal is a diagnostic, and a flood of bad requests must not
        cost an fsync each (the next fsynced commit writes it too, in order).
        """
        self.db.execute("PRAGMA synchronous=NORMAL")  # refused inside a transaction: set before BEGIN
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT INTO rejected_input (at, source, input, reason) VALUES (?, ?, ?, ?)",
                (time.time(), f"mqtt:{escape_external(topic, 120)}", escape_bytes(payload, 300), reason),
            )
            self.db.execute(
                "DELETE FROM rejected_input WHERE id <= (SELECT max(id) FROM rejected_input) - ?",
                (REJECTED_KEEP,),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self.db.execute("PRAGMA synchronous=FULL")

    def _check_seq(self, cur: sqlite3.Cursor, request: Request) -> None:
        row = cur.execute(
            "SELECT last_seq FROM loop_seq WHERE line = ? AND loop = ?", (request.line, request.loop)
        ).fetchone()
        if row is not None and request.loop_seq != row[0] + 1:
            self.gaps += 1
            log.warning(
                "loop %s/%s: seq %d after %d (gap or reorder)",
                request.line,
                request.loop,
                request.loop_seq,
                row[0],
            )
        if row is None or request.loop_seq > row[0]:
            cur.execute(
                "INSERT OR REPLACE INTO loop_seq (line, loop, last_seq) VALUES (?, ?, ?)",
                (request.line, request.loop, request.loop_seq),
            )

    def _send_due(self) -> None:
        now = time.time()
        rows = self.db.execute(
            "SELECT a.request_id, a.stage, a.eta, r.topic, r.card, r.loop FROM answer a "
            "JOIN request r ON r.id = a.request_id WHERE a.sent = 0 AND a.due <= ? ORDER BY a.due LIMIT 200",
            (now,),
        ).fetchall()
        if not rows:
            return
        for request_id, stage, eta, topic, card, loop in rows:
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
            self.link.publish(status_topic_for(topic), json.dumps(payload).encode(), 1)
        # Marked sent once handed over: if one is lost, the terminal re-publishes its request and the
        # duplicate is answered with the current status.
        self.db.execute("BEGIN IMMEDIATE")
        for request_id, stage, *_ in rows:
            self.db.execute(
                "UPDATE answer SET sent = 1 WHERE request_id = ? AND stage = ?", (request_id, stage)
            )
            self.db.execute(
                "UPDATE request SET last_status = ? WHERE id = ? AND ? IN ('accepted', 'picked', 'shipped') "
                "AND (last_status IS NULL OR (last_status != 'cancelled' AND ? > last_status))",
                (stage, request_id, stage, stage),  # accepted < picked < shipped, as text too
            )
        self.db.execute("COMMIT")

    def count_requests(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM request").fetchone()[0])
