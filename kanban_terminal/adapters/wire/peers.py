"""The messages that keep several supermarket peers and the terminals agreed (issue 16).

* `ClaimMessage`: a peer claims a request before it picks it (retained; the first claim a peer sees
  on a request's claim topic is the owner's, docs/PROTOCOL.md "Several peers").
* `CancelNoticeMessage`: the peer that receives a request cancel tells every peer (retained), so the
  request's owner stops and answers `cancelled` even when a shared subscription handed the cancel
  to another instance (docs/PROTOCOL.md "Cancels reach the owner").
* `StatusQueryMessage`: a terminal asks upstream for the current status of its open requests whose
  last status is older than `mqtt.reconcile_after_s`; the owner answers with an ordinary status
  message (the current stage, again). Idempotent: asking twice changes nothing.

Shapes only: who may claim and who answers is the peer's business (adapters/peer_claims.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kanban_terminal.adapters.wire.fields import Count, Id64, Ident, Message, Text64, Timestamp, Uuid, Version

MAX_QUERY_IDS = 100
"""Request ids per status query: 100 UUIDs are ~4 KB, under the broker's and peer's size limits;
a terminal with more open requests sends several queries."""
MAX_QUERY_BYTES = 8192
MAX_CLAIM_BYTES = 1024


class ClaimMessage(Message):
    """A peer takes a request: it alone picks and answers it. Retained, QoS 1.

    Topic `kanban/v1/{site}/upstream/claim/{request_id}`; an empty retained message clears it
    (the owner does so `claim_keep_s` after shipping).
    """

    v: Version
    request_id: Uuid
    by: Text64
    """The claiming peer's client id (config id plus `--instance`)."""
    at: Timestamp


class CancelNoticeMessage(Message):
    """A request was cancelled (a re-route): its owner must stop and answer `cancelled`. Retained, QoS 1.

    Topic `kanban/v1/{site}/upstream/cancel/{request_id}`; every peer subscribes (not shared). The
    peer that received the terminal's cancel publishes it; the owner answers `cancelled` once per
    higher `attempt` (a re-sent cancel means the terminal has not heard the answer yet), so the
    retained copy seen again after a restart answers nothing twice. The owner clears it (empty
    retained message) with its claim.
    """

    v: Version
    request_id: Uuid
    attempt: Annotated[Count, Field(ge=1)]
    """The `attempt` of the terminal's cancel this notice passes on."""
    by: Text64
    """The client id of the peer that received the cancel."""
    at: Timestamp


class StatusQueryMessage(Message):
    """A terminal asks for the current status of requests it has heard nothing new about.

    Topic `kanban/v1/{site}/{line}/status_query`; every peer hears it, the owner of each request
    answers on the line's status topic with its current stage. Requests a peer does not hold are
    ignored (the terminal's re-publish after `republish_after_s` covers requests nobody has).
    """

    v: Version
    id: Id64
    """Unique query id (information only)."""
    terminal: Ident
    line: Ident
    request_ids: Annotated[list[Uuid], Field(min_length=1, max_length=MAX_QUERY_IDS)]
    at: Timestamp
