"""Claims: how several supermarket peers agree which one picks a request (`ownership.mode = claim`).

A peer that receives a request it has not seen publishes a retained claim on
`kanban/v1/{site}/upstream/claim/{request_id}` and waits. Every peer subscribes to every claim, and
the FIRST claim a peer sees on a request's topic names the owner: one broker delivers a topic's
messages to each subscriber in the order it received them, so all peers agree without talking to
each other. The owner picks and answers; the others drop their copy. A re-sent request that a
shared subscription hands to another peer finds the claim there and is not picked again (issue 16
measured 8 of 900 picked twice without this).

The claims a peer has seen are kept in its own SQLite file (`claim` table): a peer restarted, or one
that joined later, also learns the owners from the retained claims when it subscribes. The owner
publishes its claim again when it sees a later competing one, so the retained message names the
owner. An owner clears its retained claim `claim_keep_s` after the request was shipped (or its
cancel answered: peer_cancels.py).

What it needs from the broker: retained messages, QoS 1, and one ordering point (a single broker, or
the plant side of a bridge). A cluster whose nodes may order one topic differently needs
`ownership.mode = partition` instead (docs/TOPOLOGIES.md).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.adapters.wire import MAX_CLAIM_BYTES, ClaimMessage, utc_text, validate
from kanban_terminal.topics import cancel_topic, claim_topic

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS claim (
    request_id TEXT PRIMARY KEY, owner TEXT NOT NULL, seen_at REAL NOT NULL,
    cleared INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending_claim (
    request_id TEXT PRIMARY KEY, claimed_at REAL NOT NULL
);
"""
RECLAIM_AFTER_S = 10.0
"""A claim of ours that has not come back after this long is published again (lost with a link)."""
CHORES_EVERY_S = 5.0
"""How often lost claims are looked for and old ones cleared (two indexed reads)."""


class ClaimBook:
    """The claims one peer has seen, and its own claims waiting for their echo."""

    def __init__(self, db: sqlite3.Connection, link: MqttLink, site: str):
        self.db = db
        self.link = link
        self.site = site
        self.me = link.client_id
        db.executescript(SCHEMA)
        self.lost = 0
        """Requests this peer received but another peer claimed first."""
        self._next_chores = 0.0

    def owner(self, cur: sqlite3.Cursor, request_id: str) -> str | None:
        row = cur.execute("SELECT owner FROM claim WHERE request_id = ?", (request_id,)).fetchone()
        return None if row is None else str(row[0])

    def pending(self, cur: sqlite3.Cursor, request_id: str) -> bool:
        """Has this peer claimed `request_id` and not seen a claim on it come back yet?"""
        row = cur.execute("SELECT 1 FROM pending_claim WHERE request_id = ?", (request_id,)).fetchone()
        return row is not None

    def claim(self, cur: sqlite3.Cursor, request_id: str, now: float) -> None:
        """Record our claim as pending, in the caller's transaction; `publish` it after the commit."""
        cur.execute(
            "INSERT OR REPLACE INTO pending_claim (request_id, claimed_at) VALUES (?, ?)", (request_id, now)
        )

    def publish(self, request_id: str) -> None:
        message = ClaimMessage.model_validate(
            {"v": 1, "request_id": request_id, "by": self.me, "at": utc_text(datetime.now(UTC))}
        )
        self.link.publish(
            claim_topic(self.site, request_id), message.model_dump_json().encode(), 1, retain=True
        )

    def seen(self, cur: sqlite3.Cursor, topic: str, payload: bytes, now: float) -> tuple[str, str] | None:
        """A claim came in: record it if it is the first for its request. Returns (request id, owner)
        when it settled one of OUR pending claims, else None. An empty (cleared) claim changes nothing."""
        if not payload:
            return None
        message = validate(ClaimMessage, payload, MAX_CLAIM_BYTES)
        if isinstance(message, str):
            log.warning("claim on %s refused: %s", topic, message)
            return None
        request_id = message.request_id
        cur.execute(
            "INSERT OR IGNORE INTO claim (request_id, owner, seen_at) VALUES (?, ?, ?)",
            (request_id, message.by, now),
        )
        owner = self.owner(cur, request_id)
        assert owner is not None
        if owner == self.me and message.by != self.me:
            # A later competing claim is now the retained one: say again that the request is ours.
            self.publish(request_id)
        cur.execute("DELETE FROM pending_claim WHERE request_id = ?", (request_id,))
        if cur.rowcount == 0:
            return None
        if owner != self.me:
            self.lost += 1
        return request_id, owner

    def settle(
        self, topic: str, payload: bytes, schedule: Callable[[sqlite3.Cursor, str, float], None]
    ) -> int:
        """A claim came in, in one transaction: if it settles one of our pending claims, `schedule`
        (cursor, request id, received at) our answers when we won, or drop our copy when we lost.
        Returns 1 for a received request's copy dropped, else 0."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            lost = 0
            settled = self.seen(cur, topic, payload, time.time())
            if settled is not None and settled[1] == self.me:
                row = cur.execute("SELECT received_at FROM request WHERE id = ?", (settled[0],)).fetchone()
                if row is not None:
                    schedule(cur, settled[0], float(row[0]))
            elif settled is not None:
                row = cur.execute("SELECT loop_seq FROM request WHERE id = ?", (settled[0],)).fetchone()
                cur.execute("DELETE FROM request WHERE id = ?", (settled[0],))
                # A row kept for a cancel alone (loop_seq 0, peer_cancels.py) was never counted received.
                lost = int(row is not None and row[0] > 0)
                log.info("request %s claimed first by %s: not picked here", *settled)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return lost

    @property
    def chores_due(self) -> float:
        """When `chores` has work next (its timer; the peer sleeps until then or a message)."""
        return self._next_chores

    def chores(self, now: float, keep_s: float, also: Callable[[float], object] | None = None) -> None:
        """Every `CHORES_EVERY_S` while connected: claim again what did not come back, clear old claims
        (and `also(now)`: the cancel notices' own re-send, peer_cancels.py)."""
        if now < self._next_chores:
            return
        self._next_chores = now + CHORES_EVERY_S
        self.claim_again(now)
        if also is not None:
            also(now)
        self.clear_old(now, keep_s)

    def claim_again(self, now: float) -> int:
        """Publish again our claims that have not come back (lost with a link, or before a crash)."""
        rows = self.db.execute(
            "SELECT request_id FROM pending_claim WHERE claimed_at <= ? LIMIT 500", (now - RECLAIM_AFTER_S,)
        ).fetchall()
        for (request_id,) in rows:
            self.publish(request_id)
        if rows:
            self.db.execute(
                "UPDATE pending_claim SET claimed_at = ? WHERE claimed_at <= ?", (now, now - RECLAIM_AFTER_S)
            )
        return len(rows)

    def clear_old(self, now: float, keep_s: float) -> int:
        """Clear (empty retained) our claims of requests shipped or cancelled more than `keep_s` ago,
        and the request's cancel notice with it (peer_cancels.py) whatever its last stage: a cancel
        that came after the shipment leaves a notice too, and every peer re-read it at each start.
        Emptying a topic that holds nothing costs one message a request, once."""
        rows = self.db.execute(
            "SELECT c.request_id, a.stage FROM claim c JOIN answer a ON a.request_id = c.request_id "
            "AND a.stage IN ('shipped', 'cancelled') WHERE c.owner = ? AND c.cleared = 0 AND a.sent = 1 "
            "AND a.due <= ? LIMIT 500",
            (self.me, now - keep_s),
        ).fetchall()
        for request_id, _stage in rows:
            self.link.publish(claim_topic(self.site, request_id), b"", 1, retain=True)
            self.link.publish(cancel_topic(self.site, request_id), b"", 1, retain=True)
            self.db.execute("UPDATE claim SET cleared = 1 WHERE request_id = ?", (request_id,))
        return len(rows)
