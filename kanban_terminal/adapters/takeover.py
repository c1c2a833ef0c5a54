"""Client-id takeovers said loudly, with the other instance named.

Two processes with one MQTT client id knock each other off the broker: MQTT 5 disconnects the
older one with reason 0x8E "Session taken over", it reconnects and takes the session back, and so
on (issue 16: 20 takeovers in 20 s from two peers run from one config), each logged only as
"link lost: Unspecified error" at INFO, with queued messages bounced between them.

The link subscribes to its own retained availability topic; every instance writes its own session id
(and, for the peer and the bridge, host and pid) there. A retained availability with another session
id than ours is the other instance: `SessionWitness` keeps the last one, and the takeover warning
names it. Over MQTT 3.1.1 there are no reason codes: a takeover there looks like a dropped link, and
the witness's warning on seeing the other session is all there is.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kanban_terminal.adapters.wire import utc_text
from kanban_terminal.domain.text import escape_external

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 0x8E
RECENT_S = 30.0
"""A link lost this soon after another session said "online" on our topic is taken as a takeover."""


def is_takeover(reason: Any) -> bool:
    """True for MQTT 5 DISCONNECT reason 0x8E (paho hands a ReasonCode; 3.1.1 has none)."""
    return getattr(reason, "value", None) == SESSION_TAKEN_OVER


def this_instance() -> dict[str, object]:
    """Host and pid, for availability messages that must name the process behind a client id."""
    return {"host": socket.gethostname()[:64], "pid": os.getpid()}


def instance_availability(state: str, peer: str, session: str | None, connection: int | None = None) -> bytes:
    """The supermarket peer's retained availability: which process runs this client id, and on which
    of its connections (`connection`: 1 for its first CONNACK, then one more each reconnect), so a
    terminal can tell "this peer subscribed anew" from a heartbeat (adapters/peer_watch.py)."""
    body = {"v": 1, "state": state, "peer": peer, "session": session, "connection": connection}
    body |= this_instance()
    body["at"] = utc_text(datetime.now(UTC))
    return json.dumps(body).encode()


class SessionWitness:
    """Remembers the newest availability of the same client id written by another session."""

    def __init__(self, client_id: str, session_id: str, monotonic: Callable[[], float] = time.monotonic):
        self.client_id = client_id
        self.session_id = session_id
        self.monotonic = monotonic
        self.other: str = ""
        """How the other instance described itself, "" when none was seen."""
        self.other_online_at: float | None = None
        """Monotonic time another session last said it was online."""
        self.takeovers = 0

    def seen(self, payload: bytes, retained: bool = False) -> bool:
        """An availability on our own topic (ours or another's). Always True: the link consumes it.

        A live "online" of another session while we are connected can only be a second process
        with our client id: warned at once. A retained one may be a crashed earlier run of this
        very instance (its last will comes only after 1.5 x keepalive), so it is only remembered,
        and named if our link drops soon after.
        """
        try:
            data = json.loads(payload)
        except ValueError:
            return True
        if not isinstance(data, dict) or data.get("session") in (None, self.session_id):
            return True
        parts = [f"session {data.get('session')}"]
        parts += [f"{k} {data[k]}" for k in ("host", "pid") if k in data]
        self.other = escape_external(", ".join(str(p) for p in parts), 200)
        if data.get("state") != "online":
            return True
        self.other_online_at = self.monotonic()
        if not retained:
            log.warning(
                "another instance uses MQTT client id %s (%s): give each its own --instance "
                "(or KANBAN_INSTANCE), or they take each other's broker session over",
                self.client_id,
                self.other,
            )
        return True

    def after_disconnect(self, reason: Any, host: str, port: int) -> None:
        """A lost link: warn loudly if another connection took our session.

        MQTT 5 brokers say so with reason 0x8E; mosquitto 2.0.11 just closes the socket (seen here),
        so a link lost within `RECENT_S` of another session's "online" counts as a takeover too.
        """
        recent = self.other_online_at is not None and self.monotonic() - self.other_online_at < RECENT_S
        if not is_takeover(reason) and not recent:
            return
        self.takeovers += 1
        log.warning(
            "MQTT link %s to %s:%s: SESSION TAKEN OVER (%s): another process connected with the same "
            "client id%s. Give each instance its own --instance (or KANBAN_INSTANCE).",
            self.client_id,
            host,
            port,
            "MQTT 5 reason 0x8E"
            if is_takeover(reason)
            else "the link dropped as another instance came online",
            f" (the other: {self.other})" if self.other else "",
        )
