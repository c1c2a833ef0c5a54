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
from typing import Any

from kanban_terminal.domain.text import escape_external

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 0x8E


def is_takeover(reason: Any) -> bool:
    """True for MQTT 5 DISCONNECT reason 0x8E (paho hands a ReasonCode; 3.1.1 has none)."""
    return getattr(reason, "value", None) == SESSION_TAKEN_OVER


def this_instance() -> dict[str, object]:
    """Host and pid, for availability messages that must name the process behind a client id."""
    return {"host": socket.gethostname()[:64], "pid": os.getpid()}


class SessionWitness:
    """Remembers the newest availability of the same client id written by another session."""

    def __init__(self, client_id: str, session_id: str):
        self.client_id = client_id
        self.session_id = session_id
        self.other: str = ""
        """How the other instance described itself, "" when none was seen."""
        self.takeovers = 0

    def seen(self, payload: bytes) -> bool:
        """An availability on our own topic (ours or another's). Always True: the link consumes it."""
        try:
            data = json.loads(payload)
        except ValueError:
            return True
        if not isinstance(data, dict) or data.get("session") in (None, self.session_id):
            return True
        parts = [f"session {data.get('session')}"]
        parts += [f"{k} {data[k]}" for k in ("host", "pid") if k in data]
        other = escape_external(", ".join(str(p) for p in parts), 200)
        if data.get("state") == "online" and other != self.other:
            log.warning(
                "another instance uses MQTT client id %s (%s): give each its own --instance "
                "(or KANBAN_INSTANCE), or they take each other's session over",
                self.client_id,
                other,
            )
        self.other = other
        return True

    def after_disconnect(self, reason: Any, host: str, port: int) -> None:
        """A lost link: warn loudly if the broker said another connection took our session."""
        if not is_takeover(reason):
            return
        self.takeovers += 1
        log.warning(
            "MQTT link %s to %s:%s: SESSION TAKEN OVER (MQTT 5 reason 0x8E): another process connected "
            "with the same client id%s. Give each instance its own --instance (or KANBAN_INSTANCE).",
            self.client_id,
            host,
            port,
            f" (the other: {self.other})" if self.other else " (not seen yet on the availability topic)",
        )
