"""When paho's thread may commit a group itself, and when the inbound worker thread must (issue 19).

Groups of received messages are committed on paho's network thread once its socket is drained
(runtime/inbound.py: no hand-off per signal). While it commits it neither reads nor writes, so no
PINGREQ goes out; the broker drops a client it has heard nothing from for 1.5 x keepalive, and a
commit's fsync cannot be interrupted. A disk that stalls for seconds (eMMC or SD-card garbage
collection, a failing SSD) therefore cost the link: last will "offline" on the line's dashboards,
a reconnect, every unacknowledged message redelivered (nothing lost or doubled, but the terminal
shows offline and the broker's subscribers see it go). Two rules keep paho's thread out of that:

* Slack: a group is committed on paho's thread only while the broker's deadline is at least
  `INLINE_SLACK` x keepalive away (`broker_slack`: counted from the last packet the link sent). One
  commit must then stall longer than the keepalive itself (10 s by default) to cost the link;
  without the rule a group arriving after a quiet spell started with as little as a quarter of it
  (paho pings 1 to 1.25 keepalives after its last packet). While signals flow, their PUBACKs keep
  the slack near 1.5 x keepalive (5 and 500 signals/s never hand over for it); only a group that
  comes after half a keepalive of silence from the terminal goes to the worker: one hand-off after
  a quiet spell, not one per signal of a flow.
* Slow disk: after a group that held its thread longer than `SLOW_GROUP` x keepalive (1 s by
  default, above this VM's longest commit stalls, 0.1-0.8 s in docs/BENCHMARKS.md), the following
  groups go to the worker thread, which commits while paho's thread keeps reading and pinging, until
  one of them takes less. A disk that degrades then costs hand-offs, not the link.

What remains: the first stall, on paho's thread, longer than the slack it began with (at least one
keepalive) still drops the link; its messages are redelivered and the dedupe keys absorb them
(tests/integration/test_inbound_keepalive.py shows both sides).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

INLINE_SLACK = 1.0
"""paho's thread commits only with at least this many keepalives left before the broker's deadline."""
SLOW_GROUP = 0.1
"""A group that held its thread longer than this many keepalives sends the next to the worker."""


class KeepaliveGuard:
    """Says whether paho's thread may commit the next group; told how long each group took."""

    def __init__(self, keepalive_s: float, slack: Callable[[], float]):
        """Args:
        keepalive_s: the link's keepalive.
        slack: seconds left before the broker may drop the link (`mqtt_wakeups.broker_slack`).
        """
        self.min_slack_s = INLINE_SLACK * keepalive_s
        self.slow_s = SLOW_GROUP * keepalive_s
        self._slack = slack
        self.slow = False
        """The last group took longer than `slow_s`: the next go to the worker thread."""
        self.slow_groups = 0

    def inline_ok(self) -> bool:
        """paho's thread, before a group: may it commit this one itself?"""
        return not self.slow and self._slack() >= self.min_slack_s

    def group_took(self, seconds: float, wrote: bool = True) -> None:
        """Either thread, after a group: a slow one sends the next to the worker, a fast one that
        wrote something back. A fast group that wrote nothing (redeliveries the dedupe keys drop)
        says nothing about the disk: after a dropped link those came fast and sent the next slow
        commit back to paho's thread (bench/slow_commit_link.py: 2 drops instead of 1)."""
        slow = seconds > self.slow_s
        if not slow and not wrote:
            return
        if slow:
            self.slow_groups += 1
            if not self.slow:
                log.warning(
                    "a group of inbound messages took %.1f s (slow disk?): committing on the inbound "
                    "worker thread until commits take less than %.1f s, so the MQTT link keeps its pings",
                    seconds, self.slow_s,
                )  # fmt: skip
        elif self.slow:
            log.info("inbound commits are fast again (%.2f s): back on the MQTT link's thread", seconds)
        self.slow = slow
