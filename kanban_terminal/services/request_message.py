"""The request message the relay publishes, built straight from an outbox row (issue 19).

`services.outbox.request_payload` is the documented message (docs/PROTOCOL.md) built from a row
object; this builds the same bytes from the raw outbox row (`storage.outbox.OUTBOX_COLUMNS`) on the
publish path, where it ran once a signal on paho's thread:

* no `OutboxRow` (two `datetime.fromisoformat`) only to format both times back to text: the stored
  text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, storage/types.py) cut to milliseconds is the wire's text;
* one `json.JSONEncoder` made once: `json.dumps` with `separators` builds an encoder every call;
* the site, line and terminal ids read from the config once.

At 5 signals/s (cold caches, per-section thread CPU in `serve`): 53-61 us a request before.
tests/unit/test_request_message.py checks the bytes against `request_payload` for every row shape.
"""

from __future__ import annotations

import json
from typing import Any

from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.types import from_text


def wire_time(stored: str) -> str:
    """A stored UTC time as the wire's millisecond text (`outbox.utc_text` of the parsed value)."""
    if len(stored) == 27 and stored[4] == "-" and stored[-1] == "Z":  # `to_text`'s fixed width
        return f"{stored[:23]}Z"  # isoformat(timespec="milliseconds") truncates as this does
    return from_text(stored).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestMessages:
    """Request payloads of one terminal, from outbox rows."""

    def __init__(self, terminal: Terminal):
        cfg = terminal.config
        self._terminal = terminal
        self._site, self._line, self._id = cfg.site.id, cfg.line.id, cfg.terminal.id
        self._encode = json.JSONEncoder(separators=(",", ":")).encode

    def payload(self, r: tuple[Any, ...]) -> bytes:
        """The request message of raw outbox row `r` (OUTBOX_COLUMNS order), byte for byte what
        `request_payload` makes of the same row."""
        message: dict[str, object] = {
            "v": 1,
            "id": r[0],
            "site": self._site,
            "line": self._line,
            "terminal": self._id,
            "loop": r[1],
            "loop_seq": r[2],
            "card": r[3],
            "part": r[4],
            "quantity": r[5],
            "station": r[6],
            "point_of_use": r[7],
            "source": r[8],
            "raised_at": wire_time(r[9]),
            "due_at": wire_time(r[10]),
            "attempt": r[11] + 1,
        }
        if r[3] in self._terminal.reserve_cards:  # a red card's request (issue 18)
            message["expedite"] = True
        return self._encode(message).encode()
