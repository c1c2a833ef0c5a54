"""The shift handover sheet: what the outgoing shift leaves open, acknowledged by the incoming lead.

At each shift start of the plant (`[site] shifts`, in its zone) a handover is due until a team lead
of the new shift acknowledges the sheet with badge + PIN. The sheet lists open andons, loops at risk
(an overdue request, a runway below its margin, or at least half of the loop's cards waiting for a
refill), suspended and lost
cards, and the reserve draws (red cards scanned) of the last 24 hours.

Pure: facts come in as arguments (the use case reads them), time as the shift's start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from kanban_terminal.domain.cards import Rejection

AT_RISK_WAITING_SHARE = 0.5
"""A loop with at least this share of its cards waiting for a refill is at risk: one more empty bin
and the line may run dry before the open requests arrive (the SAP kanban board's urgency figure)."""


@dataclass(frozen=True)
class LoopRisk:
    loop_id: str
    waiting: int
    cards: int
    overdue: int
    runway_min: float | None = None
    """The loop's runway in minutes when it is below its margin (domain/runway.py), else None: the
    board and `runway` call such a loop AT RISK, so the sheet must too."""

    @property
    def at_risk(self) -> bool:
        return (
            self.overdue > 0
            or self.runway_min is not None
            or (self.cards > 0 and self.waiting / self.cards >= AT_RISK_WAITING_SHARE)
        )

    def line(self) -> str:
        late = f", {self.overdue} overdue" if self.overdue else ""
        low = f", runway {self.runway_min:.0f} min" if self.runway_min is not None else ""
        return f"{self.loop_id}: {self.waiting}/{self.cards} cards waiting for a refill{late}{low}"


@dataclass(frozen=True)
class HandoverSheet:
    """What a new shift takes over."""

    day: date
    shift: int
    shift_label: str
    """`shift 2 of 2026-03-02 (from 14:00 Europe/Berlin)`."""
    shift_start: datetime
    open_andons: tuple[str, ...]
    loops_at_risk: tuple[LoopRisk, ...]
    suspended_cards: tuple[str, ...]
    lost_cards: tuple[str, ...]
    reserve_draws: tuple[str, ...] = ()
    """Red cards scanned in the 24 h before the shift started or since: `card (loop) at HH:MM`."""

    def summary(self) -> str:
        """One line for the card log and the acknowledgement."""
        return (
            f"{self.shift_label}: {len(self.open_andons)} open andons, {len(self.loops_at_risk)} loops "
            f"at risk, {len(self.suspended_cards)} suspended and {len(self.lost_cards)} lost cards, "
            f"{len(self.reserve_draws)} reserve draws"
        )

    def lines(self) -> list[str]:
        """The sheet for people (the CLI prints it)."""
        out = [f"Handover, {self.shift_label}"]
        sections = [
            ("Open andons", list(self.open_andons)),
            ("Loops at risk", [r.line() for r in self.loops_at_risk]),
            ("Suspended cards", list(self.suspended_cards)),
            ("Lost cards", list(self.lost_cards)),
            ("Reserve draws (24 h)", list(self.reserve_draws)),
        ]
        for title, items in sections:
            out.append(f"{title} ({len(items)}):" if items else f"{title}: none")
            out += [f"  {item}" for item in items]
        return out


def at_risk(loops: Iterable[LoopRisk]) -> tuple[LoopRisk, ...]:
    return tuple(r for r in loops if r.at_risk)


def decide_acknowledge(
    sheet: HandoverSheet, acknowledged_by: str | None, badge: str | None, *, authorised: bool
) -> Rejection | None:
    """May `badge` acknowledge this shift's handover? None when yes.

    Args:
        acknowledged_by: who already acknowledged this shift's handover, if anyone.
        authorised: a team lead logged in with badge + PIN.
    """
    if not authorised or badge is None:
        words = "The incoming team lead takes the shift over: scan your badge and enter the PIN."
        return Rejection("needs_team_lead", words)
    if acknowledged_by is not None:
        return Rejection("already_acknowledged", f"{acknowledged_by} already took over {sheet.shift_label}.")
    return None
