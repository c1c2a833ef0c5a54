"""How several supermarket peers share one site's requests so that each is picked exactly once.

`[upstream]` of the config and its `[upstream.ownership]`. Two mechanisms (docs/PROTOCOL.md,
"Several peers"):

* `claim` (default): before it picks, a peer publishes a retained claim for the request id and picks
  only if its own claim is the first one it sees on that topic. One broker hands every subscriber a
  topic's messages in the order it received them, so every peer agrees on the first claim: a re-sent
  request that a shared subscription hands to another peer is recognised there and not picked again.
  Works with or without shared subscriptions (without them every peer receives every request and
  the claims pick one). Needs retained messages and one ordering point: a single broker, or the
  plant side of a bridge. Not a cluster whose nodes may order one topic differently.
* `partition`: every peer receives every request (no shared subscription) and serves only the loops
  whose stable hash falls in its `partition` of `partitions`. Needs nothing from the broker beyond
  MQTT 3.1.1, so it is the mode for clusters, RabbitMQ and ejabberd. A stopped peer's loops wait (its
  persistent session keeps them) until it is back: size the outage promise accordingly.

This module imports no layer; it only reads settings.
"""

from __future__ import annotations

import zlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class PeerOwnership(BaseModel):
    """Which of several peers picks a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["claim", "partition"] = "claim"
    """`claim`: peers claim each request before picking; `partition`: loops split by config."""
    shared_subscription: bool = True
    """Claim mode over MQTT 5: share the requests with `$share/<group>/...` (load is split). False
    for brokers without shared subscriptions (ejabberd): every peer gets every request, claims pick
    one. Always off in partition mode and over MQTT 3.1.1."""
    shared_session_expiry_s: int = Field(120, ge=0)
    """Session expiry of a peer on a shared subscription (instead of `mqtt.session_expiry_s`). A
    stopped instance stays in the share group while its session lives, and the broker keeps handing
    it its share of the requests (and of their re-sends): seen here, a retired instance's session
    swallowed a third of the requests and their re-sends for as long as it lived (7 days by default).
    Short, the group forgets it soon; what was queued for it comes back through the terminal's
    re-publish, and the claims keep that from being picked twice."""
    partitions: int = Field(1, ge=1, le=256)
    """Partition mode: how many peers split the loops."""
    partition: int = Field(0, ge=0)
    """Partition mode: which share this peer serves, 0 to `partitions` - 1 (`--partition I/N`)."""
    claim_keep_s: float = Field(7 * 24 * 3600.0, gt=0)
    """How long a retained claim stays after the request was shipped: a re-send older than this
    (the terminal stops re-sending once any status came back) would be picked again."""

    @model_validator(mode="after")
    def _partition_in_range(self) -> PeerOwnership:
        if self.partition >= self.partitions:
            raise ValueError(
                f"partition {self.partition} does not exist: partitions are 0 to {self.partitions - 1}"
            )
        return self

    def owns_loop(self, line: str, loop: str) -> bool:
        """Partition mode: is (line, loop) this peer's? Always True in claim mode.

        crc32, not hash(): the same loop must fall in the same partition in every process.
        """
        if self.mode != "partition":
            return True
        return zlib.crc32(f"{line}/{loop}".encode()) % self.partitions == self.partition


def parse_partition(text: str) -> tuple[int, int]:
    """`--partition 1/3` -> (1, 3). Raises ValueError with a message for the command line."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or int(count) < 1 or int(index) >= int(count):
        raise ValueError(f"--partition must be I/N with 0 <= I < N (e.g. 0/2), got {text!r}")
    return int(index), int(count)


class UpstreamSettings(BaseModel):
    """The supermarket / warehouse peer (`kanban-terminal upstream` and the demo): `[upstream]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: Ident = "supermarket"
    """Shared-subscription group: instances with the same group share the requests."""
    id: Ident = "SM1-peer"
    """Client id of the peer instance."""
    accept_after_s: float = Field(1.0, ge=0)
    """Seconds from request to `accepted`."""
    pick_after_s: float = Field(10.0, ge=0)
    """Seconds from request to `picked`."""
    ship_after_s: float = Field(20.0, ge=0)
    """Seconds from request to `shipped`."""
    transit_s: float = Field(20.0, ge=0)
    """Seconds from shipped to arrival at the line: the ETA sent with `shipped`."""
    delay_every: int = Field(0, ge=0)
    """Demo and tests: every Nth request is `delayed` by `delay_s` (a new ETA after `accepted`); 0: none."""
    delay_s: float = Field(60.0, ge=0)
    at_risk_every: int = Field(0, ge=0)
    """Demo and tests: every Nth request is reported `at_risk` (with a reason) after `accepted`; 0: none."""
    ownership: PeerOwnership = PeerOwnership()
    """`[upstream.ownership]`: how several peers pick each request once."""
