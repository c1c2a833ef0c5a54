"""Re-route a loop to its second source: one team-lead action, one transaction (issue 18).

Every open request of the loop is cancelled at the source it went to and raised again at the other
source with the same card: the old request closes as `rerouted` and leaves a cancel for upstream in
`request_cancel` (sent by the cancel outbox, services/cancel_outbox.py, until upstream answers
`cancelled`); the new one is a fresh request (new id, next `loop_seq`, due a planned lead time from
now) that the relay sends like any other. The loop's route (`loop_route`) says where its next requests
go; re-routing again brings it back to its configured source. Each card gets a `re_routed` log row
naming both requests, and a refusal (no team lead, no second source) is logged too
(`reroute_refused`).

It must not publish: the relay and the cancel outbox do, after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kanban_terminal.config_sourcing import second_source_of
from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.supply import reroute_target
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.andon import authority
from kanban_terminal.services.events import CardsChanged, RequestRaised
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.errors import STORAGE_ERRORS, storage_reason

if TYPE_CHECKING:  # for the hints only: `serve` reroutes no loop by badge (services.auth, issue 19)
    from kanban_terminal.services.auth import AuthSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rerouted:
    """What a re-route did, in words for the team lead."""

    ok: bool
    message: str
    loop_id: str
    source: str = ""
    """Where the loop is fed from now."""
    moved: tuple[tuple[str, str, str], ...] = ()
    """(card, cancelled request, new request) for each open request moved."""


@dataclass(frozen=True)
class LoopRerouted:
    """A loop was re-routed (after the commit): screens refresh, the cancel outbox wakes."""

    loop_id: str
    source: str


def reroute_loop(
    terminal: Terminal, loop_id: str, *, source: str, auth: AuthSession | None, note: str = ""
) -> Rerouted:
    """Send `loop_id` (and its open requests) to the other of its two sources (team lead).

    Args:
        terminal: the terminal.
        loop_id: the loop, as configured.
        source: the door the action came through (keyboard, cli).
        auth: the logged-in team lead.
        note: why (kept in the card log).

    Returns:
        What it did; `ok` False with the reason when nothing changed (refused, or not saved: disk
        full, I/O error; the transaction rolled back whole, no request was moved).
    """
    try:
        return _reroute(terminal, loop_id, source=source, auth=auth, note=note)
    except STORAGE_ERRORS as exc:
        log.error("re-route of %s not saved: %s", loop_id, exc)
        return Rerouted(
            False, f"NOT re-routed: the terminal could not save ({storage_reason(exc)}).", loop_id
        )


def _reroute(
    terminal: Terminal, loop_id: str, *, source: str, auth: AuthSession | None, note: str
) -> Rerouted:
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    door = escape_external(source, 80)
    cfg = terminal.config
    loop = next((lp for lp in cfg.loops if lp.id == loop_id), None)
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        target: str | Rejection
        if not authorised:
            target = Rejection("needs_team_lead", "Re-routing a loop needs a team lead: badge and PIN.")
        elif loop is None:
            target = Rejection("unknown_loop", f"Loop {escape_external(loop_id, 64)} is not on this line.")
        else:
            current = uow.supply.route_of(loop.id) or loop.source
            target = reroute_target(loop.source, second_source_of(cfg.second_sources, loop.id), current)
        if isinstance(target, Rejection):
            uow.log.append(
                card_log.LogEntry(
                    occurred_at=now, recorded_at=now, event="reroute_refused",
                    loop_id=loop.id if loop is not None else None, actor=badge, source=door,
                    detail=f"{target.reason}: {target.message}",
                )
            )  # fmt: skip
            return Rerouted(False, target.message, loop_id)
        assert loop is not None  # an unknown loop was refused above
        uow.supply.set_route(loop.id, None if target == loop.source else target, at=now, actor=badge)
        why = escape_external(note, 200)
        moved: list[tuple[str, str, str]] = []
        for old in uow.supply.open_of_loop(loop.id):
            step = transition(old.card_id, CardState(old.card_state), CardEvent.RE_ROUTED, now)
            if isinstance(step, Rejection):  # open_of_loop joins on the card's open request: cannot be
                continue
            new_id = terminal.new_id()
            uow.scans.close_request(old.request_id, status="rerouted", at=now, lead_time_s=None)
            uow.scans.insert_request(
                request_id=new_id, card_id=old.card_id, loop_id=loop.id,
                loop_seq=uow.scans.take_loop_seq(loop.id), part_number=loop.part, quantity=old.quantity,
                station=loop.station, point_of_use=loop.point_of_use, source=target, raised_at=now,
                due_at=now + loop.terms.planned_lead_time, status=CardState.QUEUED.value,
            )  # fmt: skip
            if old.shortfall_of:  # still a shortfall: no bin-empty, and its bin is at the line
                uow.supply.mark_shortfall(new_id, old.shortfall_of)
            uow.scans.update_card(
                old.card_id, state=step.to_state.value, at=now, open_request_id=new_id, scanned=False
            )
            detail = f"from {old.source} to {target}: request {old.request_id} cancelled, {new_id} raised"
            uow.log.append(
                card_log.LogEntry(
                    occurred_at=now, recorded_at=now, event=step.event.value, card_id=old.card_id,
                    loop_id=loop.id, from_state=step.from_state.value, to_state=step.to_state.value,
                    request_id=new_id, actor=badge, source=door,
                    detail=detail + (f"; {why}" if why else ""),
                )
            )  # fmt: skip
            uow.supply.add_cancel(
                old.request_id, loop_id=loop.id, card_id=old.card_id, source=old.source,
                reason=f"re-routed to {target}" + (f": {why}" if why else ""), replaced_by=new_id,
                actor=badge, at=now,
            )  # fmt: skip
            uow.collect(RequestRaised(new_id, loop.id))
            moved.append((old.card_id, old.request_id, new_id))
        if not moved:  # the route changed all the same: one log row says who did it
            uow.log.append(
                card_log.LogEntry(
                    occurred_at=now, recorded_at=now, event=CardEvent.RE_ROUTED.value, loop_id=loop.id,
                    actor=badge, source=door, detail=f"loop to {target}; no open request"
                    + (f"; {why}" if why else ""),
                )
            )  # fmt: skip
        uow.collect(CardsChanged(tuple(card for card, _, _ in moved)))
        uow.collect(LoopRerouted(loop.id, target))
    words = f"Loop {loop.id} now fed from {target}"
    words += f": {len(moved)} open request(s) moved there." if moved else "."
    return Rerouted(True, words, loop.id, target, tuple(moved))
