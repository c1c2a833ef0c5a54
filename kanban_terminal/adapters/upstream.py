"""A supermarket / warehouse peer that speaks the protocol: consumes requests, answers statuses.

It is what the demo delivers with and what the tests and benchmarks reconcile against, and a small
site can run it for real (`kanban-terminal upstream`). It shows what every consumer must do:

* deduplicate by request id (the terminal publishes at least once, the broker may resurrect old
  messages after a crash): a duplicate is not a new pick, it is answered with the current status;
* commit, then acknowledge (manual ack), in its own SQLite file, so a crash loses no request;
* watch each loop's `loop_seq` and log gaps (reliability goal R11);
* serve every line of a site through one subscription, and share the load with other instances via
  an MQTT 5 shared subscription (`$share/<group>/...`): a plant scales by its broker;
* pick each request once across all instances: claims or a partition by config (peer_claims.py,
  peer_settings.py);
* send every answer store-and-forward (peer_outbox.py) and answer a terminal's status query with the
  current stage.

Answers (accepted, picked, shipped with ETA) are scheduled in the database: a restart of the peer
neither forgets nor repeats them."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_terminal.adapters.anchor_intake import keep_anchor
from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.adapters.peer_cancels import CancelBook
from kanban_terminal.adapters.peer_claims import ClaimBook
from kanban_terminal.adapters.peer_outbox import StatusOutbox, schedule_warnings
from kanban_terminal.adapters.peer_refused import keep_refused
from kanban_terminal.adapters.takeover import instance_availability
from kanban_terminal.adapters.wire import MAX_REQUEST_BYTES, RequestCancelMessage, RequestMessage
from kanban_terminal.adapters.wire.decode import parse_json_object, validate_object
from kanban_terminal.config import MqttSettings, UpstreamSettings
from kanban_terminal.domain.text import escape_external
from kanban_terminal.storage.anchors import AnchorStore
from kanban_terminal.topics import (
    cancels_filter,
    claims_filter,
    peer_availability,
    site_log_anchors_filter,
    site_requests_filter,
    site_status_query_filter,
)

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


@dataclass(frozen=True)
class Request:
    id: str
    line: str
    loop: str
    loop_seq: int
    card: str


def parse_request(payload: bytes) -> Request | str:
    """Validate a request against the wire schema; return it or the reason. Never raises."""
    data = parse_json_object(payload, MAX_REQUEST_BYTES)
    return data if isinstance(data, str) else _request_of(data)


def _request_of(data: dict[str, Any]) -> Request | str:
    message = validate_object(RequestMessage, data)
    if isinstance(message, str):
        return message
    return Request(message.id, message.line, message.loop, message.loop_seq, message.card)


def parse_requests_topic(payload: bytes) -> tuple[Request, int] | str:
    """A message of the requests topic, parsed once: (the request, 0; or for a cancel of it, a
    re-route, `type` = cancel, the cancel's attempt, 1 or more), or the reason it is refused."""
    data = parse_json_object(payload, MAX_REQUEST_BYTES)
    if isinstance(data, str):
        return data
    if data.get("type") != "cancel":
        request = _request_of(data)
        return request if isinstance(request, str) else (request, 0)
    message = validate_object(RequestCancelMessage, data)
    if isinstance(message, str):
        return message
    return Request(message.id, message.line, message.loop, 0, message.card), message.attempt


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
        instance: str | None = None,
    ):
        """Args:
        client_id: the MQTT client id; default the config's `upstream.id`, plus `-<instance>`.
        instance: tells instances run from one config apart (`--instance`, KANBAN_INSTANCE): two
            peers with one client id knock each other off the broker.
        """
        self.settings = settings
        self.ownership = settings.ownership
        self.site = site
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        flt = site_requests_filter(site)
        own = self.ownership
        # Shared subscriptions are MQTT 5 only, and useless when the loops are partitioned: there
        # every instance hears every request and keeps its own share (peer_settings.py).
        shared = mqtt.protocol == "5" and own.mode == "claim" and own.shared_subscription
        # A shared subscription hands each instance only some of a loop's requests: a "gap" there is
        # another instance's request, not a lost one (only the instance set as a whole sees them all).
        self._gap_level = logging.INFO if shared else logging.WARNING
        if shared:
            mqtt = mqtt.model_copy(update={"session_expiry_s": own.shared_session_expiry_s})
        subscription = f"$share/{settings.group}/{flt}" if shared else flt
        # Claims first: the broker answers SUBSCRIBEs in order, so the retained claims are in before
        # the first request of this connection.
        subscriptions = [(claims_filter(site), 1), (cancels_filter(site), 1)] if own.mode == "claim" else []
        subscriptions += [(subscription, 1), (site_status_query_filter(site), 1)]
        # Anchors are not shared: each instance keeps every terminal's card-log anchors.
        subscriptions += [(site_log_anchors_filter(site), 1)]
        self.anchors = AnchorStore(self.db)
        """Every card-log anchor the site's terminals publish."""
        self._client_id = client_id = client_id or (f"{settings.id}-{instance}" if instance else settings.id)
        self.link = MqttLink(
            mqtt,
            client_id,
            subscriptions=subscriptions,
            on_message=self._on_message,
            availability_topic=peer_availability(site, client_id),
            availability_message=self._availability,
            max_inflight=100,
        )
        self.claims = ClaimBook(self.db, self.link, site) if own.mode == "claim" else None
        self.cancels = CancelBook(
            self.db, self.link, site, self.claims, forward=shared, owns_loop=own.owns_loop
        )
        self.outbox = StatusOutbox(self.db, self.link)
        self.link.set_handlers(on_published=self._on_published, on_connected=self._on_connected)
        self._inbox: queue.SimpleQueue[tuple[str, bytes, int, int, int] | None] = queue.SimpleQueue()
        self._woken = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upstream-peer", daemon=True)
        self.received = 0
        self.duplicates = 0
        self.gaps = 0
        self.refused = 0
        self.cancelled = 0
        self.not_mine = 0
        """Requests of another partition (partition mode) or claimed by another peer (claim mode)."""
        self.queries = 0
        self.answered_again = 0
        """Answers sent again because of a duplicate request or a status query."""

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

    def _availability(self, state: str) -> bytes:
        link = getattr(self, "link", None)  # None while the link builds its last will
        ids = (link.session_id, link.generation) if link else (None, None)
        return instance_availability(state, self._client_id, *ids)

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        self._inbox.put((topic, payload, mid, qos, generation))

    # paho's thread: hand over, and wake the peer's thread once for a burst of them.
    def _on_published(self, mid: int, ok: bool, reason: str) -> None:
        self.outbox.on_published(mid, ok, reason)
        self._wake()

    def _on_connected(self, session_present: bool) -> None:
        self.outbox.on_connected(session_present)
        self._wake()

    def _wake(self) -> None:
        if not self._woken.is_set():
            self._woken.set()
            self._inbox.put(None)

    def _sleep_s(self, now: float) -> float | None:
        """Until the next answer is due or the claims' chores (while connected); None: until a
        message, a PUBACK or a reconnect. Polling every 50 ms cost an idle peer 20 wake-ups and
        ~2.5-3.3 ms of CPU a second, each pass reading the outbox (bench/peer_idle.py). `now` is the
        step's own: an answer due between the step and a later clock read was in neither."""
        due = self.outbox.next_due(now)
        if self.claims is not None and self.link.connected:
            due = self.claims.chores_due if due is None else min(due, self.claims.chores_due)
        return None if due is None else max(0.001, due - now)

    def _run(self) -> None:
        item: tuple[str, bytes, int, int, int] | None = None
        while not self._stop.is_set():
            try:
                if item is not None:
                    self._handle(*item)
                sleep_s = self._sleep_s(self._chores())
            except Exception:
                log.exception("upstream peer step failed")
                sleep_s = 0.5
            try:
                item = self._inbox.get(timeout=sleep_s)
            except queue.Empty:
                item = None
            self._woken.clear()  # after the get: a PUBACK handed over from now on wakes us again

    def _chores(self) -> float:
        self.outbox.step(now := time.time())
        if self.claims is not None and self.link.connected:
            self.claims.chores(now, self.ownership.claim_keep_s, self.cancels.notice_again)
        return now

    def _handle(self, topic: str, payload: bytes, mid: int, qos: int, generation: int) -> None:
        if topic.endswith("/log_anchor"):
            keep_anchor(self.anchors, topic, payload)
        elif topic.endswith("/status_query"):
            self._handle_query(topic, payload)
        elif "/upstream/claim/" in topic:
            self._handle_claim(topic, payload)
        elif "/upstream/cancel/" in topic:
            self.cancels.seen_notice(payload, time.time())
        else:
            self._handle_request(topic, payload)
        self.link.ack(mid, qos, generation)

    def _handle_request(self, topic: str, payload: bytes) -> None:
        message = parse_requests_topic(payload)
        if isinstance(message, str):
            self.refused += 1
            log.warning("request refused on %s: %s", escape_external(topic, 120), message)
            keep_refused(self.db, topic, payload, message)
            return
        parsed, cancel_attempt = message
        if cancel_attempt:
            self._cancel(topic, parsed, cancel_attempt)
            return
        if not self.ownership.owns_loop(parsed.line, parsed.loop):
            self.not_mine += 1  # another partition's: that peer hears it too
            return
        now = time.time()
        claim = False
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            owner = self.claims.owner(cur, parsed.id) if self.claims else None
            if owner is not None and owner != self.link.client_id:
                # Claimed by another peer (a re-send a shared subscription handed here): not ours.
                cur.execute("COMMIT")
                self.not_mine += 1
                log.info("request %s is %s's: not picked here", parsed.id, escape_external(owner, 64))
                return
            cur.execute(
                "INSERT OR IGNORE INTO request (id, topic, line, loop, loop_seq, card, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (parsed.id, topic, parsed.line, parsed.loop, parsed.loop_seq, parsed.card, now),
            )
            new = cur.rowcount == 1
            if new and self.claims is not None and owner is None:
                self.claims.claim(cur, parsed.id, now)  # picked once our claim comes back first
                claim = True
            elif new:
                self._schedule(cur, parsed.id, now)
            if new:
                self._check_seq(cur, parsed)
            else:
                # A duplicate (re-publish, redelivery): no new pick; answer again with where it is,
                # so the terminal can stop re-publishing.
                cur.execute("UPDATE request SET duplicates = duplicates + 1 WHERE id = ?", (parsed.id,))
                self.answered_again += self.outbox.resend_current(cur, parsed.id)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if claim:
            assert self.claims is not None
            self.claims.publish(parsed.id)
        self.received += new
        self.duplicates += not new

    def _schedule(self, cur: sqlite3.Cursor, request_id: str, received_at: float) -> None:
        """Plan this peer's answers to a request it owns, timed from when it came in (or answer
        `cancelled` at once when its cancel came first)."""
        if self.cancels.answer(cur, request_id, time.time()):
            return
        s = self.settings
        ship = received_at + s.ship_after_s
        for stage, due in zip(_STAGES, (s.accept_after_s, s.pick_after_s, s.ship_after_s), strict=True):
            cur.execute(
                "INSERT OR IGNORE INTO answer (request_id, stage, due, eta) VALUES (?, ?, ?, ?)",
                (request_id, stage, received_at + due, ship + s.transit_s if stage == "shipped" else None),
            )
        schedule_warnings(cur, s, self.received + 1, request_id, received_at)

    def _handle_claim(self, topic: str, payload: bytes) -> None:
        assert self.claims is not None
        lost = self.claims.settle(topic, payload, self._schedule)
        self.received -= lost
        self.not_mine += lost

    def _handle_query(self, topic: str, payload: bytes) -> None:
        """A terminal asks where its requests are: answer those this peer owns with the current stage."""
        answered = self.outbox.answer_query(payload)
        if isinstance(answered, str):
            self.refused += 1
            log.warning("status query refused on %s: %s", escape_external(topic, 120), answered)
            keep_refused(self.db, topic, payload, answered)
            return
        self.queries += 1
        self.answered_again += answered

    def _cancel(self, topic: str, cancel: Request, attempt: int) -> None:
        """Stop serving a cancelled request (a re-route) and answer `cancelled`, here if this peer
        owns it, else through its owner (peer_cancels.py); a cancel of a request not seen yet is kept,
        so that request is not picked when it comes."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            claim, notice = self.cancels.received(
                cur, topic, cancel.id, cancel.line, cancel.loop, cancel.card, attempt, time.time()
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if notice:  # before the claim: a peer that learns the owner from it knows of the cancel already
            self.cancels.publish(cancel.id, attempt)
        if claim:
            assert self.claims is not None
            self.claims.publish(cancel.id)
        self.cancelled += 1

    def _check_seq(self, cur: sqlite3.Cursor, request: Request) -> None:
        row = cur.execute(
            "SELECT last_seq FROM loop_seq WHERE line = ? AND loop = ?", (request.line, request.loop)
        ).fetchone()
        if row is not None and request.loop_seq != row[0] + 1:
            self.gaps += 1
            log.log(
                self._gap_level,
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

    def count_requests(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM request").fetchone()[0])

    def count_picked(self) -> int:
        """Requests this peer owns and picks (scheduled answers), as opposed to merely received."""
        return int(self.db.execute("SELECT count(DISTINCT request_id) FROM answer").fetchone()[0])
