"""The card-log rows of the andon feature: every andon action, and every refusal, with its facts.

Each row carries the andon's kind, reason and station (and a STOP's downtime on its resolve row, and
the seconds since the raise on acknowledge, resolve, cancel and escalation rows) in their own
columns, so metrics and the log's station filter read fields, never text; `detail` stays words for
people. Appends inside the caller's unit of work (through `AndonRows.log`, storage/); never
commits, never reads the log back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kanban_terminal.domain.andon import Andon
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.text import escape_external
from kanban_terminal.storage.andon_rows import AndonScope, andons_in
from kanban_terminal.storage.tables import CardLogRow


def log_andon(
    scope: AndonScope,
    andon: Andon,
    event: str,
    *,
    actor: str | None,
    source: str,
    now: datetime,
    at: datetime,
    from_state: str | None,
    detail: str = "",
    elapsed: timedelta | None = None,
) -> None:
    """Append one andon action with the andon's facts: kind, reason, station, the card's loop, on
    the resolve row of a STOP its downtime (raise to resolution, `Andon.downtime`), and on an
    acknowledge, resolve, cancel or escalation row the elapsed time since the raise (`elapsed_s`).

    Args:
        scope: the caller's unit of work.
        andon: the andon after the action.
        event: andon_raised, andon_acknowledged, andon_resolved, andon_cancelled or andon_escalated.
        actor: who did it (a badge), None for the system or an anonymous operator.
        source: the door it came through (keyboard, cli, mqtt:<device>, system); escaped here.
        now: when this terminal writes the row.
        at: when it happened.
        from_state: the andon's state before the action (None for a raise).
        detail: words for people; nothing reads facts back out of it.
        elapsed: the time from the raise to this step as the caller measured it on the andon's
            elapsed anchor (services/andon_elapsed.py), so the facts, the detail and the published
            message agree; None (no anchor): `elapsed_s` stays NULL and a STOP's downtime is the
            wall difference (`Andon.downtime`), which is what readers then use too.
    """
    down = None
    if event == "andon_resolved" and andon.resolved_at is not None:
        down = andon.downtime(at, elapsed)
    timed = elapsed if event in _TIMED else None
    rows = andons_in(scope)
    rows.log(
        CardLogRow(
            occurred_at=at,
            recorded_at=now,
            event=event,
            card_id=andon.card_id,
            loop_id=rows.card_loop(andon.card_id) if andon.card_id else None,
            from_state=from_state,
            to_state=andon.state.value,
            request_id=andon.request_id,
            actor=actor,
            source=escape_external(source, 80),
            detail=detail,
            andon_id=andon.id,
            andon_kind=andon.kind.value,
            andon_reason=andon.reason,
            station=andon.station,
            downtime_s=down.total_seconds() if down is not None else None,
            elapsed_s=max(timed, timedelta(0)).total_seconds() if timed is not None else None,
        ),
    )


_TIMED = frozenset({"andon_acknowledged", "andon_resolved", "andon_cancelled", "andon_escalated"})
"""The rows that record `elapsed_s`: the steps whose time since the raise metrics and screens show,
and a tier's (the runner's timer has it when it fires: branch healthclock)."""


def log_refusal(
    scope: AndonScope,
    action: str,
    rejection: Rejection,
    *,
    actor: str | None,
    source: str,
    now: datetime,
    andon_id: str | None = None,
    card_id: str | None = None,
) -> None:
    andons_in(scope).log(
        CardLogRow(
            occurred_at=now,
            recorded_at=now,
            event="andon_refused" if card_id is None else "card_action_refused",
            card_id=card_id,
            actor=actor,
            source=escape_external(source, 80),
            detail=f"{action}: {rejection.reason}: {rejection.message}",
            # The id may be what someone typed (a CLI argument): escaped like every external text.
            andon_id=escape_external(andon_id, 64) if andon_id is not None else None,
        ),
    )
