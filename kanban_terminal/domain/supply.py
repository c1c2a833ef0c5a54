"""Supplier trouble, second sources and delivery in full: the decisions, with no I/O (issues 17, 18).

* Upstream may warn about an open request (`delayed` with a new ETA, `at_risk` with a reason). The
  warning annotates the request: the card does not move, and the first warning starts the
  disruption-response clock (first sign of trouble -> line safe), which a later warning never resets.
* A loop may name a second source. A re-route sends the loop's open requests there: each one is
  cancelled at its source and raised again at the other with the same card.
* At the delivery scan the operator may say how many parts were short or damaged. A short delivery
  asks for the shortfall on the same card; damaged parts raise a quality call.

Time comes in as arguments; nothing here reads a clock, a file or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kanban_terminal.domain.cards import Rejection


class Trouble(StrEnum):
    """Upstream's warning about an open request."""

    DELAYED = "delayed"
    AT_RISK = "at_risk"


TROUBLE_WORDS = {Trouble.DELAYED: "Delayed", Trouble.AT_RISK: "At risk"}
"""What the card shows."""


@dataclass(frozen=True)
class TroubleNote:
    """What a warning leaves on its request."""

    trouble: Trouble
    first_at: datetime
    """The first sign of trouble on this request (kept from an earlier warning)."""
    eta: datetime | None
    reason: str


def note_trouble(
    trouble: Trouble, at: datetime, eta: datetime | None, reason: str, first_seen: datetime | None
) -> TroubleNote | Rejection:
    """The annotation a warning leaves, or why it is refused (`delayed` needs a new ETA)."""
    if trouble is Trouble.DELAYED and eta is None:
        return Rejection("no_eta", "A delayed status must give the new ETA.")
    first = at if first_seen is None or at < first_seen else first_seen
    return TroubleNote(trouble, first, eta, reason)


def trouble_text(trouble: str | None, eta: datetime | None, reason: str | None) -> str:
    """One short line for the card: `Delayed, ETA 10:42` / `At risk: strike at carrier`."""
    if not trouble:
        return ""
    words = TROUBLE_WORDS.get(Trouble(trouble), trouble)
    if trouble == Trouble.DELAYED and eta is not None:
        words += f", ETA {eta:%H:%M}"
    if reason:
        words += f": {reason}"
    return words


def reroute_target(primary: str, alternate: str | None, current: str) -> str | Rejection:
    """Where a re-route sends a loop now fed from `current`: the other of its two sources."""
    if alternate is None:
        return Rejection("no_second_source", "This loop has no second source to re-route to: none is set up.")
    return primary if current == alternate else alternate


@dataclass(frozen=True)
class DeliveryIssue:
    """What the operator recorded at a delivery scan."""

    short: int
    damaged: int

    @property
    def in_full(self) -> bool:
        return self.short == 0 and self.damaged == 0


def check_delivery_issue(container_quantity: int, short: int, damaged: int) -> DeliveryIssue | Rejection:
    """A valid short/damaged record for a bin of `container_quantity`, or why it is refused."""
    if short < 0 or damaged < 0:
        return Rejection("negative", "Quantities short or damaged cannot be negative.")
    if short == 0 and damaged == 0:
        return Rejection("nothing", "Give a quantity short or damaged (more than 0).")
    if short + damaged > container_quantity:
        return Rejection(
            "too_many",
            f"Short {short} + damaged {damaged} is more than the {container_quantity} parts of a full bin.",
        )
    return DeliveryIssue(short, damaged)
