"""Lost cards: found by silence instead of a yearly audit, counted in an audit, replaced by a new id.

A card that has not been seen (scanned or signalled) for `terminal.lost_after_lead_times` times its
loop's planned lead time, while its loop kept moving (as many requests raised since as the loop has
cards, so a night or a weekend flags nothing), is flagged lost: its loop silently runs with one card
fewer until someone notices, which is how stockouts start. Flagging goes through the domain
`transition` and the chained card log in one transaction, like every other state change. A
replacement card gets a new id (the next index of the loop's generated ids) and the old id is
retired for good: a stray old card scanned later is refused instead of silently doubling the loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kanban_terminal.domain.card_ids import generated_card_id, has_valid_check
from kanban_terminal.domain.cards import CIRCULATING_STATES, CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.codes import InputRejection, normalise_code
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log, card_reads
from kanban_terminal.storage.tables import CardLogRow, CardReplacementRow, CardRow


@dataclass(frozen=True)
class SilentCard:
    """A card not seen for longer than its loop allows."""

    card_id: str
    loop_id: str
    state: str
    last_seen_at: datetime
    silent_s: float
    limit_s: float


def find_silent(terminal: Terminal, now: datetime | None = None) -> list[SilentCard]:
    """Circulating cards unseen for more than the lost-card limit of their loop, longest first."""
    now = now or terminal.clock()
    multiple = terminal.config.terminal.lost_after_lead_times
    circulating = [s.value for s in CIRCULATING_STATES]
    cards = card_reads.circulating_cards(terminal.db, circulating)
    cards_in_loop = Counter(c.loop_id for c in cards if c.id not in terminal.reserve_cards)
    out = []
    for card in cards:
        loop = terminal.card_loops.get(card.id)
        if loop is None or card.id in terminal.reserve_cards:
            continue  # a reserve bin waits untouched for weeks by design: silence is not loss
        limit = timedelta(minutes=loop.lead_time_minutes) * multiple
        seen = card.last_seen_at or card.state_since
        if now - seen > limit and _loop_moved(terminal, loop.id, seen, cards_in_loop[loop.id]):
            out.append(
                SilentCard(
                    card.id, loop.id, card.state, seen, (now - seen).total_seconds(), limit.total_seconds()
                )
            )
    return sorted(out, key=lambda c: -c.silent_s / c.limit_s)


def _loop_moved(terminal: Terminal, loop_id: str, since: datetime, cards: int) -> bool:
    """Whether the loop raised at least `cards` requests since `since`: bins are used in turn, so by
    then every healthy card has been scanned once. A loop standing still (a night, a weekend, a
    stopped line) therefore flags nothing, however long the silence."""
    return card_reads.requests_since(terminal.db, loop_id, since, cards) >= cards


def flag_lost(
    terminal: Terminal, card_ids: Iterable[str], *, source: str = "system", actor: str | None = None
) -> list[str]:
    """Flag the given cards lost in one transaction; returns the ids actually flagged (cards no longer
    circulating are skipped: they were found or handled in the meantime)."""
    now = terminal.clock()
    flagged: list[str] = []
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        session = uow.session
        for card_id in card_ids:
            card = session.get(CardRow, card_id)
            if card is None or card.retired:
                continue
            step = transition(card.id, CardState(card.state), CardEvent.FLAGGED_LOST, now)
            if isinstance(step, Rejection):
                continue
            seen = card.last_seen_at or card.state_since
            card_log.append(
                session,
                CardLogRow(
                    occurred_at=now,
                    recorded_at=now,
                    event=step.event.value,
                    card_id=card.id,
                    loop_id=card.loop_id,
                    from_state=step.from_state.value,
                    to_state=step.to_state.value,
                    request_id=card.open_request_id,
                    actor=actor,
                    source=source,
                    detail=f"not seen since {seen:%Y-%m-%d %H:%M} UTC",
                ),
            )
            card.state = step.to_state.value
            card.state_since = now
            flagged.append(card.id)
        if flagged:
            uow.collect(CardsChanged(tuple(flagged)))
    return flagged


@dataclass(frozen=True)
class AuditResult:
    found: tuple[str, ...]
    missing: tuple[str, ...]
    """Active cards of the audited loops that were not scanned."""
    unknown: tuple[str, ...]
    """Scanned codes that are no active card of this line (escaped by normalisation)."""


def audit(terminal: Terminal, scanned: Iterable[str], loops: Iterable[str] = ()) -> AuditResult:
    """Compare the cards found in circulation with the active cards of `loops` (all loops if empty)."""
    wanted = set(loops)
    active = {c for c, lp in terminal.card_loops.items() if not wanted or lp.id in wanted}
    found: set[str] = set()
    unknown: list[str] = []
    for raw in scanned:
        if not raw.strip():
            continue
        code = normalise_code(raw, terminal.config.terminal.max_code_length)
        if isinstance(code, InputRejection):
            unknown.append(code.escaped_input)
        elif code in active:
            found.add(code)
        elif code not in terminal.card_loops:
            unknown.append(code)
    return AuditResult(tuple(sorted(found)), tuple(sorted(active - found)), tuple(unknown))


class ReplaceError(Exception):
    """The card cannot be replaced; the message says why."""


def replace_card(terminal: Terminal, card_id: str, *, actor: str | None = None, source: str = "cli") -> str:
    """Retire lost card `card_id` and register a new card in its loop; return the new id.

    Only loops with generated ids get a new id automatically (the next index after every id the
    loop ever had). The old card's open request, if any, is left as it is: it belongs to a bin.
    """
    card_id = card_id.strip().upper()
    loop = terminal.card_loops.get(card_id)
    if loop is None:
        raise ReplaceError(f"{card_id} is not an active card of this line")
    if loop.card_prefix is None:
        raise ReplaceError(
            f"loop {loop.id} uses printed ids (card_ids): add the new card's id to the configuration"
        )
    now = terminal.clock()
    with terminal.db.unit_of_work(release=terminal.bus.publish) as uow:
        session = uow.session
        card = session.get(CardRow, card_id)
        if card is None or card.state != CardState.LOST.value:
            raise ReplaceError(f"{card_id} is not flagged lost; flag it lost first (lost-cards --flag)")
        ids = card_reads.card_ids_of_loop(uow, loop.id)
        prefix = loop.card_prefix
        used = [
            int(i[len(prefix) : -1])
            for i in ids
            if i.startswith(prefix) and has_valid_check(i) and i[len(prefix) : -1].isdigit()
        ]
        new_id = generated_card_id(prefix, max([len(loop.card_id_list()), *used]) + 1)
        card.retired = True
        session.add(CardRow(id=new_id, loop_id=loop.id, state=CardState.IN_USE.value, state_since=now))
        session.add(CardReplacementRow(old_id=card_id, new_id=new_id, loop_id=loop.id, replaced_at=now))
        card_log.append(
            session,
            CardLogRow(
                occurred_at=now,
                recorded_at=now,
                loop_id=loop.id,
                actor=actor,
                event="retired",
                card_id=card_id,
                from_state=card.state,
                source=source,
                detail=f"lost card replaced by {new_id}",
            ),
        )
        card_log.append(
            session,
            CardLogRow(
                occurred_at=now,
                recorded_at=now,
                loop_id=loop.id,
                actor=actor,
                event="registered",
                card_id=new_id,
                to_state=CardState.IN_USE.value,
                source=source,
                detail=f"replaces lost card {card_id}",
            ),
        )

        def swap_ids() -> None:  # only once the replacement is stored
            terminal.card_loops.pop(card_id, None)
            terminal.card_loops[new_id] = loop

        uow.after_commit(swap_ids)
        uow.collect(CardsChanged((card_id, new_id)))
    return new_id
