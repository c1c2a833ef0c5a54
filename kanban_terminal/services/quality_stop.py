"""Quality at the source (issue 18): where `[quality_stop] anyone = true`, anyone may stop the line for a
quality reason with no PIN (Toyota's cord), and a team lead must confirm or release it in time.

- Raising: `raise_in` (services/andon.py) grants the STOP when `by_anyone` says so, for every door
  (the screen's F6, `kanban-terminal quality-stop`, an MQTT andon button), and the log row says so.
- Confirming is acknowledging by someone with team-lead authority (`confirm_refusal` refuses any
  other badge): until then the stop keeps escalating.
- Releasing is resolving, which a STOP already needs a team lead for (domain/andon.py).
- In time: tier 1 (the supervisor) fires after `confirm_minutes` if the reason's own tier 1 is later
  (`escalation_tiers`, read by services/escalation.py).

Nothing here writes: these are the rules the use cases ask.
"""

from __future__ import annotations

from datetime import timedelta

from kanban_terminal.config import TerminalConfig
from kanban_terminal.domain.andon import AUTHORITY_ROLES, Andon, AndonKind
from kanban_terminal.domain.cards import Rejection


def by_anyone(config: TerminalConfig, kind: AndonKind, reason: str) -> bool:
    """True when this STOP may be raised without team-lead authority."""
    rule = config.quality_stop
    return kind is AndonKind.STOP and rule.anyone and reason in rule.reasons


def is_quality_stop(config: TerminalConfig, andon: Andon) -> bool:
    return by_anyone(config, andon.kind, andon.reason)


def raise_note(config: TerminalConfig) -> str:
    """What the raise row adds when the stop needed no PIN."""
    minutes = config.quality_stop.confirm_minutes
    return f" (quality stop by anyone, no PIN: a team lead confirms or releases within {minutes:g} min)"


def confirm_refusal(config: TerminalConfig, andon: Andon, role: str | None) -> Rejection | None:
    """Why `role` may not acknowledge `andon`, or None: only a team lead confirms a quality stop."""
    if not is_quality_stop(config, andon) or role in AUTHORITY_ROLES:
        return None
    return Rejection(
        "needs_team_lead",
        "A quality stop is confirmed by a team lead: scan a team-lead badge. "
        "It keeps escalating until one does.",
    )


def escalation_tiers(
    config: TerminalConfig, andon: Andon, tiers: tuple[timedelta, ...]
) -> tuple[timedelta, ...]:
    """The tiers of `andon`: a quality stop's tier 1 fires no later than `confirm_minutes`."""
    if not is_quality_stop(config, andon) or len(tiers) < 2:
        return tiers
    deadline = timedelta(minutes=config.quality_stop.confirm_minutes)
    first = min(tiers[1], deadline)
    # Later tiers keep their distance from tier 1, so a shorter tier 1 does not bunch them up.
    shift = tiers[1] - first
    return (tiers[0], first, *(t - shift for t in tiers[2:]))
