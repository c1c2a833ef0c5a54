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
from pathlib import Path

from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.adapters.peer_cancels import CancelBook
from kanban_terminal.adapters.peer_claims import ClaimBook
from kanban_terminal.adapters.peer_handlers import PeerHandlers
from kanban_terminal.adapters.peer_outbox import StatusOutbox
from kanban_terminal.adapters.takeover import instance_availability
from kanban_terminal.config import MqttSettings, UpstreamSettings
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


class UpstreamPeer(PeerHandlers):
    """One instance of the supermarket peer; use as a context manager (what its thread does with each
    message: adapters/peer_handlers.py)."""

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

    def count_requests(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM request").fetchone()[0])

    def count_picked(self) -> int:
        """Requests this peer owns and picks (scheduled answers), as opposed to merely received."""
        return int(self.db.execute("SELECT count(DISTINCT request_id) FROM answer").fetchone()[0])
