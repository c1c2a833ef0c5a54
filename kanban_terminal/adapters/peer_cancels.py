"""Cancels reach the owner: a re-route's cancel stops the pick wherever the request is served.

A terminal's cancel (a re-route, docs/PROTOCOL.md "Request cancel") travels on the requests topic,
so on a shared subscription it reaches ONE peer instance, and in claim mode that is often not the
instance whose claim won: before this module the owner picked and shipped the request anyway, and
the line got the parts twice (from the first source and the second).

Now the instance that receives a cancel:

* records it (`cancel` table), so the request is never picked here, whenever it comes;
* answers `cancelled` itself when it owns the request (its claim won, or its partition's loop);
* otherwise, on a shared subscription, publishes a retained `CancelNoticeMessage` on
  `kanban/v1/{site}/upstream/cancel/{request_id}`, which every peer subscribes to without `$share`;
  the owner answers when it sees it. Kept as `pending_cancel` until it comes back from the broker, and
  published again after `RENOTICE_AFTER_S` (a link lost, a crash before the PUBACK);
* when no peer has claimed the request yet (the cancel came before the request, or before its claim
  settled), claims it too: whoever wins the claim (this peer by the cancel, or another by the request)
  answers `cancelled` when it settles, so a cancel nobody could serve is still answered, once.

Exactly one answer per cancel `attempt`: the owner answers when it sees an attempt higher than the
one it answered (a re-sent cancel says the terminal has not heard the answer: lost on a bridge), so
the retained notice seen again after a restart, or the same attempt forwarded by several peers,
answers nothing twice; a second `cancelled` would be ignored by the terminal anyway
(services/supplier_trouble.apply_cancelled).

Needs from the broker what claims need (retained messages, one ordering point); without shared
subscriptions (3.1.1, `shared_subscription = false`) every peer hears every cancel itself and no notice is
sent.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from kanban_terminal.adapters.mqtt_client import MqttLink
from kanban_terminal.adapters.peer_claims import ClaimBook
from kanban_terminal.adapters.wire import MAX_CLAIM_BYTES, CancelNoticeMessage, utc_text, validate
from kanban_terminal.domain.text import escape_external
from kanban_terminal.topics import cancel_topic

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS cancel (
    request_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, answered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pending_cancel (
    request_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, noticed_at REAL NOT NULL
);
"""
RENOTICE_AFTER_S = 10.0
"""A notice of ours not seen back after this long is published again (as claims are)."""


class CancelBook:
    """The cancels one peer knows of, and its notices waiting for their echo."""

    def __init__(
        self,
        db: sqlite3.Connection,
        link: MqttLink,
        site: str,
        claims: ClaimBook | None,
        *,
        forward: bool,
        owns_loop: Callable[[str, str], bool],
    ):
        """Args:
        claims: the claim book in claim mode; None in partition mode (the loop's partition owns).
        forward: tell the other peers (a shared subscription hands each cancel to one instance).
        owns_loop: partition mode: is (line, loop) this peer's?
        """
        self.db = db
        self.link = link
        self.site = site
        self.claims = claims
        self.forward = forward
        self.owns_loop = owns_loop
        self.me = link.client_id
        db.executescript(SCHEMA)
        self.answered = 0
        """`cancelled` answers this peer scheduled (one per cancel attempt it owns)."""
        self.forwarded = 0
        """Notices this peer published for cancels it received but did not own."""

    def cancelled(self, cur: sqlite3.Cursor, request_id: str) -> bool:
        return cur.execute("SELECT 1 FROM cancel WHERE request_id = ?", (request_id,)).fetchone() is not None

    def received(self, cur: sqlite3.Cursor, topic: str, request_id: str, line: str, loop: str, card: str,
                 attempt: int, now: float) -> tuple[bool, bool]:  # fmt: skip
        """A terminal's cancel, in the caller's transaction. Returns (claim to publish, notice to
        publish) for after the commit."""
        self._record(cur, request_id, attempt)
        if self.claims is None:
            if self.owns_loop(line, loop):
                self._keep_row(cur, topic, request_id, line, loop, card, now)
                self.answer(cur, request_id, now)
            return False, False
        owner = self.claims.owner(cur, request_id)
        if owner == self.me:
            self.answer(cur, request_id, now)
            return False, False
        claim = False
        if owner is None:
            # Nobody owns it yet: claim it, so a cancel of a request no peer ever gets is answered.
            self._keep_row(cur, topic, request_id, line, loop, card, now)
            claim = not self.claims.pending(cur, request_id)
            if claim:
                self.claims.claim(cur, request_id, now)
        if self.forward:
            who = escape_external(owner, 64) if owner else "(claim not settled)"
            log.info("cancel of request %s passed on to its owner %s", request_id, who)
            cur.execute(
                "INSERT OR REPLACE INTO pending_cancel (request_id, attempt, noticed_at) VALUES (?, ?, ?)",
                (request_id, attempt, now),
            )
        return claim, self.forward

    def seen_notice(self, payload: bytes, now: float) -> None:
        """A notice came in (its own transaction): record the cancel; the owner answers it."""
        if not payload:
            return  # cleared
        notice = validate(CancelNoticeMessage, payload, MAX_CLAIM_BYTES)
        if isinstance(notice, str):
            log.warning("cancel notice refused: %s", notice)
            return
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            self._record(cur, notice.request_id, notice.attempt)
            cur.execute(
                "DELETE FROM pending_cancel WHERE request_id = ? AND attempt <= ?",
                (notice.request_id, notice.attempt),
            )
            if self.claims is not None and self.claims.owner(cur, notice.request_id) == self.me:
                self.answer(cur, notice.request_id, now)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def answer(self, cur: sqlite3.Cursor, request_id: str, now: float) -> bool:
        """The owner: stop serving a cancelled request and answer `cancelled`, unless this attempt
        was answered already. Returns whether the request is cancelled (nothing to pick)."""
        row = cur.execute(
            "SELECT attempt, answered FROM cancel WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return False
        attempt, answered = int(row[0]), int(row[1])
        if attempt <= answered:
            return True
        cur.execute("UPDATE request SET last_status = 'cancelled' WHERE id = ?", (request_id,))
        cur.execute("DELETE FROM answer WHERE request_id = ? AND sent = 0", (request_id,))
        cur.execute(
            "INSERT OR REPLACE INTO answer (request_id, stage, due, sent) VALUES (?, 'cancelled', ?, 0)",
            (request_id, now),
        )
        cur.execute("UPDATE cancel SET answered = attempt WHERE request_id = ?", (request_id,))
        self.answered += 1
        return True

    def publish(self, request_id: str, attempt: int) -> None:
        at = utc_text(datetime.now(UTC))
        message = CancelNoticeMessage.model_validate(
            {"v": 1, "request_id": request_id, "attempt": attempt, "by": self.me, "at": at}
        )
        topic = cancel_topic(self.site, request_id)
        self.link.publish(topic, message.model_dump_json().encode(), 1, retain=True)
        self.forwarded += 1

    def notice_again(self, now: float) -> int:
        """Publish again our notices that have not come back (lost with a link, or before a crash)."""
        rows = self.db.execute(
            "SELECT request_id, attempt FROM pending_cancel WHERE noticed_at <= ? LIMIT 500",
            (now - RENOTICE_AFTER_S,),
        ).fetchall()
        for request_id, attempt in rows:
            self.publish(request_id, int(attempt))
        if rows:
            self.db.execute(
                "UPDATE pending_cancel SET noticed_at = ? WHERE noticed_at <= ?",
                (now, now - RENOTICE_AFTER_S),
            )
        return len(rows)

    def _record(self, cur: sqlite3.Cursor, request_id: str, attempt: int) -> None:
        cur.execute(
            "INSERT INTO cancel (request_id, attempt) VALUES (?, ?) ON CONFLICT (request_id) "
            "DO UPDATE SET attempt = max(attempt, excluded.attempt)",
            (request_id, attempt),
        )

    @staticmethod
    def _keep_row(cur: sqlite3.Cursor, topic: str, request_id: str, line: str, loop: str, card: str,
                  now: float) -> None:  # fmt: skip
        """The request row the answer is sent from (its line's status topic); a request not seen yet
        is kept this way, so it is recognised, and not picked, when it comes."""
        cur.execute(
            "INSERT OR IGNORE INTO request (id, topic, line, loop, loop_seq, card, received_at) "
            "VALUES (?, ?, ?, ?, 0, ?, ?)",
            (request_id, topic, line, loop, card, now),
        )
