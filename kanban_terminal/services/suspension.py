"""Taking a card out of circulation and back: team-lead actions that live beside the andon.

A suspended card must not be refilled, so its open request is closed as cancelled in the same
transaction (and, if the relay never sent it, taken out of the outbox). Who did it is in the card log;
a refusal (no team lead, wrong state) is logged as `card_action_refused`.
"""

from __future__ import annotations

from kanban_terminal.domain.cards import CardEvent, CardState, Rejection, transition
from kanban_terminal.domain.text import escape_external
from kanban_terminal.services.andon import AndonOutcome, authority, refused_outcome
from kanban_terminal.services.andon_log import log_refusal
from kanban_terminal.services.auth import AuthSession
from kanban_terminal.services.events import CardsChanged
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_log
from kanban_terminal.storage.tables import CardLogRow, CardRow, RequestRow


def _card_action(
    terminal: Terminal, card_id: str, event: CardEvent, *, source: str, auth: AuthSession | None, note: str
) -> AndonOutcome:
    now = terminal.clock()
    badge, authorised = authority(terminal, auth, source)
    action = event.value
    card_id = card_id.strip().upper()
    refused: Rejection | None = None
    with terminal.db.transaction() as session:
        card = session.get(CardRow, card_id)
        if not authorised:
            refused = Rejection(
                "needs_team_lead",
                f"Taking a card {'out of' if event is CardEvent.SUSPENDED else 'back into'} circulation "
                "needs a team lead: scan a team-lead badge and enter the PIN.",
            )
        elif card is None or card.retired:
            refused = Rejection("unknown_card", f"Card {escape_external(card_id, 40)} is not on this line.")
        if refused is None and card is not None:
            step = transition(card_id, CardState(card.state), event, now)
            if isinstance(step, Rejection):
                refused = step
        if refused is not None:
            log_refusal(session, action, refused, actor=badge, source=source, now=now, card_id=card_id)
        else:
            assert card is not None and not isinstance(step, Rejection)
            detail = escape_external(note, 200)
            request_id = card.open_request_id
            if event is CardEvent.SUSPENDED and request_id:
                # A suspended card must not be refilled: its open request is closed as cancelled.
                request = session.get(RequestRow, request_id)
                if request is not None:
                    request.status, request.closed_at = "cancelled", now
                    if request.publish_state == "pending":
                        request.publish_state = "cancelled"
                card.open_request_id = None
                detail = (detail + "; " if detail else "") + f"open request {request_id} cancelled"
            card.state, card.state_since = step.to_state.value, now
            card_log.append(
                session,
                CardLogRow(
                    occurred_at=now, recorded_at=now, event=event.value, card_id=card_id,
                    loop_id=card.loop_id,
                    from_state=step.from_state.value, to_state=step.to_state.value, request_id=request_id,
                    actor=badge, source=escape_external(source, 80), detail=detail,
                ),
            )  # fmt: skip
    if refused is not None:
        return refused_outcome(terminal, action, refused, source)
    terminal.bus.publish(CardsChanged((card_id,)))
    word = "taken out of circulation" if event is CardEvent.SUSPENDED else "back in circulation"
    return AndonOutcome(True, f"Card {card_id} {word}.")


def suspend_card(
    terminal: Terminal, card_id: str, *, source: str, auth: AuthSession | None, note: str = ""
) -> AndonOutcome:
    """Take a card out of circulation (team lead); an open request of it is closed as cancelled."""
    return _card_action(terminal, card_id, CardEvent.SUSPENDED, source=source, auth=auth, note=note)


def resume_card(
    terminal: Terminal, card_id: str, *, source: str, auth: AuthSession | None, note: str = ""
) -> AndonOutcome:
    """Put a suspended card back into circulation (team lead)."""
    return _card_action(terminal, card_id, CardEvent.RESUMED, source=source, auth=auth, note=note)


def suspend_or_resume(
    terminal: Terminal, card_id: str, *, source: str, auth: AuthSession | None, note: str = ""
) -> AndonOutcome:
    """The screen's one action: resume a suspended card, suspend any other (the rules decide the rest)."""
    with terminal.db.reading() as session:
        card = session.get(CardRow, card_id.strip().upper())
        suspended = card is not None and card.state == CardState.SUSPENDED.value
    act = resume_card if suspended else suspend_card
    return act(terminal, card_id, source=source, auth=auth, note=note)
