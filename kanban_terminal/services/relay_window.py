"""The relay's in-flight window: publishes the broker has not answered yet, and its answer rate.

Split from services/relay.py, which decides what to publish and when; this only keeps count. At most
`size` rows are in paho's memory at a time (the outbox is the only durable queue, reliability finding
6), and the backlog's share of that window follows how fast the broker answers (`backlog_cap`).
Not thread-safe on its own: the relay holds its lock around every call. It must not publish or
touch storage.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

BACKLOG_QUEUE_S = 0.2
"""Keep no more backlog in flight than the broker answers in this long (see `backlog_cap`)."""

MIN_BACKLOG_INFLIGHT = 20
"""The backlog's share of the window never drops below this (paho's own default window)."""

ACK_RATE_SPAN_S = 0.5
"""The broker's answer rate is counted over the last this many seconds."""

IDLE_SWEEP_S = 5.0
"""The relay reads the outbox this often (at most a twelfth of `republish_after`) when nothing is
in memory: stale rows and rows another process wrote (the `scan` CLI) go out a few seconds later
than with its 1 s sweep, which was one of an idle `serve`'s six wake-ups a second and 0.5 of its
3 ms of CPU a second (bench/idle_wakeups.py, issue 19)."""


class InflightWindow:
    """Which request each unanswered mid carries, since when, and which are live loops' rows."""

    def __init__(self, size: int, timer: Callable[[], float]):
        self.size = size
        self.mids: dict[int, str] = {}
        """mid -> request id."""
        self.ids: set[str] = set()
        """Request ids with paho or PUBACKed but not yet marked published: never published twice."""
        self._since: dict[int, datetime] = {}
        self._live: set[int] = set()
        """Mids of live loops' rows (`outbox.hot_rows`): they may use the whole window."""
        self.again: set[str] = set()
        """Ids in flight when the relay was asked to publish again everything unanswered (a peer that
        subscribed anew missed them): each is due again once marked, as `due_again`."""
        self.due_again: set[str] = set()
        """Marked ids of `again`: published again (`sent`) whatever their last publish time."""
        self.held: dict[str, datetime] = {}
        """Refused request id -> when it may be tried again."""
        self._timer = timer
        self._answered_at: deque[float] = deque()
        """Monotonic times of the broker's answers in the last ACK_RATE_SPAN_S."""

    def __len__(self) -> int:
        return len(self.mids)

    @property
    def idle(self) -> bool:
        """Nothing in flight, PUBACKed and not marked, or held after a refusal."""
        return not (self.mids or self.ids or self.held)

    @property
    def free(self) -> int:
        return self.size - len(self.mids)

    def sent(self, mid: int, request_id: str, now: datetime, *, live: bool) -> None:
        self.due_again.discard(request_id)
        self.mids[mid] = request_id
        self._since[mid] = now
        self.ids.add(request_id)
        if live:
            self._live.add(mid)

    def answered(self, mid: int) -> str | None:
        """The broker answered `mid`: free its slot; its request id, or None for a mid not ours (an
        availability heartbeat, an answer from before a restart). The id stays in `ids` until the
        caller marks it published or lets it go (`release`)."""
        request_id = self.mids.pop(mid, None)
        self._since.pop(mid, None)
        self._live.discard(mid)
        if request_id is not None:
            self._answered_at.append(self._timer())
        return request_id

    def republish_in_flight(self) -> None:
        """What is in flight now is published again once marked (bounded: at most the window)."""
        self.again, self.due_again = set(self.ids), set()

    def release(self, request_ids: list[str]) -> bool:
        """These requests are marked published: no longer in flight. True if one of them is now
        `due_again`."""
        self.ids.difference_update(request_ids)
        if not self.again:
            return False
        due = self.again.intersection(request_ids)
        self.again -= due
        self.due_again |= due
        return bool(due)

    def hold(self, request_id: str, until: datetime) -> None:
        """The broker refused `request_id`: not in flight any more, and not sent again before `until`."""
        self.ids.discard(request_id)
        self.held[request_id] = until

    def ready(self, request_id: str, now: datetime) -> bool:
        """Whether `request_id` may be published now (not held, or its pause is over)."""
        until = self.held.get(request_id)
        if until is not None and until > now:
            return False
        self.held.pop(request_id, None)
        return True

    def forget_lost(self, now: datetime, after_s: float) -> None:
        """A publish with no broker answer for `after_s` (paho dropped it, or a PUBACK got lost on a
        live link, which MQTT never retries: paho.mqtt.c#651) frees its slot so the row is
        published again."""
        for mid, since in list(self._since.items()):
            if (now - since).total_seconds() > after_s:
                request_id = self.mids.pop(mid, None)
                self._since.pop(mid, None)
                self._live.discard(mid)
                if request_id is not None:
                    self.ids.discard(request_id)

    def next_deadline(self, after_s: float) -> datetime | None:
        """The soonest wall time a held row may go again or an unanswered publish counts as lost
        (`forget_lost` after `after_s`): the relay reads the outbox then, not on every sweep."""
        times = list(self.held.values())
        if self._since:
            times.append(min(self._since.values()) + timedelta(seconds=after_s))
        return min(times, default=None)

    def backlog_free(self) -> int:
        """How many more backlog rows may go out now (within `backlog_cap` and the window)."""
        return min(self.free, self.backlog_cap() - (len(self.mids) - len(self._live)))

    def backlog_cap(self) -> int:
        """How many backlog rows may be in flight: what the broker answers in BACKLOG_QUEUE_S.

        Why: the broker reads one connection in order, so a live request waits behind every backlog
        PUBLISH already on the wire, however early the relay hands it over. With the plant broker
        (a database save per queued message while a persistent consumer lags) the broker answered
        ~300-600 a second in the soak, so a full window of 200 meant 0.3-0.7 s of queue in front of
        every live request (soak, 10,000 backlog: live p50 0.31 s, p99 0.71 s). A slow broker is
        kept just as busy by fewer rows; a fast one (thousands a second) still gets the whole window.
        """
        now = self._timer()
        while self._answered_at and self._answered_at[0] < now - ACK_RATE_SPAN_S:
            self._answered_at.popleft()
        answered_in_span = len(self._answered_at) * BACKLOG_QUEUE_S / ACK_RATE_SPAN_S
        return max(MIN_BACKLOG_INFLIGHT, min(self.size, int(answered_in_span)))
