"""The supermarket peer's message handlers: one message off its inbox, applied and then acknowledged.

Split from adapters/upstream.py, whose `UpstreamPeer` holds the state and runs the peer's thread
(the link, the inbox, the answers' outbox); this holds what that thread does with each message:
a request (deduplicated, claimed or scheduled, its `loop_seq` checked), a cancel, a claim, a status
query, a card-log anchor. `UpstreamPeer` inherits it, so callers still see one object. Runs on the
peer's thread only; `_handle` acks a message only once its handler has returned (what it wrote is
committed; a handler that raises leaves it unacked, for the broker to redeliver on a new connection).
"""

from __future__ import annotations

import logging
import sqlite3
import time

from kanban_terminal.adapters.anchor_intake import keep_anchor
from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.adapters.peer_cancels import CancelBook
from kanban_terminal.adapters.peer_claims import ClaimBook
from kanban_terminal.adapters.peer_outbox import StatusOutbox, schedule_warnings
from kanban_terminal.adapters.peer_refused import keep_refused
from kanban_terminal.adapters.peer_requests import Request, parse_requests_topic
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.domain.text import escape_external
from kanban_terminal.peer_settings import PeerOwnership
from kanban_terminal.storage.anchors import AnchorStore

log = logging.getLogger(__name__)

_STAGES = ("accepted", "picked", "shipped")


class PeerHandlers:
    """`UpstreamPeer`'s handlers for its own thread. The state is `UpstreamPeer`'s (set and described
    in its `__init__`); these annotations only tell the type checker what the handlers use."""

    settings: UpstreamSettings
    ownership: PeerOwnership
    db: sqlite3.Connection
    anchors: AnchorStore
    link: MqttLink
    claims: ClaimBook | None
    cancels: CancelBook
    outbox: StatusOutbox
    received: int
    duplicates: int
    gaps: int
    refused: int
    cancelled: int
    not_mine: int
    queries: int
    answered_again: int
    _gap_level: int

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
