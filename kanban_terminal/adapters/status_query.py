"""Sends the terminal's status queries (services/reconcile.py) as the wire's `StatusQueryMessage`.

QoS 1, not retained (a query is an event): a lost query is simply asked again a bound later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from kanban_terminal.adapters.wire import StatusQueryMessage, utc_text
from kanban_terminal.services.outbox import Publisher
from kanban_terminal.topics import LineTopics


class StatusQuerySender:
    """`sender(request_ids)` publishes one query for up to 100 request ids."""

    def __init__(
        self, publisher: Publisher, topics: LineTopics, terminal: str, clock: Callable[[], datetime]
    ):
        self.publisher = publisher
        self.topic = topics.status_query
        self.terminal = terminal
        self.line = topics.line
        self.clock = clock

    def __call__(self, request_ids: list[str]) -> int:
        message = StatusQueryMessage.model_validate(
            {
                "v": 1,
                "id": uuid.uuid4().hex,
                "terminal": self.terminal,
                "line": self.line,
                "request_ids": request_ids,
                "at": utc_text(self.clock()),
            }
        )
        return self.publisher.publish(self.topic, message.model_dump_json().encode(), 1)
