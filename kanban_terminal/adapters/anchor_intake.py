"""The upstream peer's side of card-log anchors: validate the retained message, keep it in the store.

Kept apart from the peer (adapters/upstream.py, whose `_handle` in adapters/peer_handlers.py only
routes the topic here) so the peer's request handling stays what it was. A message that is not a
valid anchor, or whose topic names another terminal than its payload, is logged and dropped: it
must not become evidence.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kanban_terminal.adapters.wire import LogAnchorMessage, utc_text, validate
from kanban_terminal.domain.text import escape_external
from kanban_terminal.storage.anchors import Anchor, AnchorStore

log = logging.getLogger(__name__)

MAX_ANCHOR_BYTES = 1024


def keep_anchor(store: AnchorStore, topic: str, payload: bytes) -> bool:
    """Keep the anchor in `payload` (from `topic`); False when it is refused or conflicts."""
    message = validate(LogAnchorMessage, payload, MAX_ANCHOR_BYTES)
    if isinstance(message, str):
        log.warning("log anchor refused on %s: %s", escape_external(topic, 120), message)
        return False
    levels = topic.split("/")
    if (
        len(levels) < 7
        or levels[-2] != message.terminal
        or levels[2] != message.site
        or levels[3] != message.line
    ):
        log.warning(
            "log anchor on %s names terminal %s: refused", escape_external(topic, 120), message.terminal
        )
        return False
    anchor = Anchor(
        message.terminal, message.row, message.hash, message.at, message.key, message.site, message.line
    )
    if not store.record(anchor, utc_text(datetime.now(UTC))):
        log.error(
            "terminal %s published row %d with another hash than before: its card log was rewritten",
            message.terminal, message.row,
        )  # fmt: skip
        return False
    return True
