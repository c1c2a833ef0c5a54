"""Configuration of resilient JIT at the line (issue 18): `[runway]`, `[[reserves]]`, `[quality_stop]`.

Kept out of config.py (near its 400-line limit), which adds the three sections to `TerminalConfig`
and calls `check_resilience` from its cross-check. Like config.py it imports no layer but the domain.

    [runway]                    # when a loop counts as at risk of running dry (domain/runway.py)
    margin_lead_times = 1.0

    [[reserves]]                # a critical loop's contingency bins, with their own red cards
    loop = "L-ST10-1001"
    card_ids = ["R10011"]

    [quality_stop]              # anyone may stop the line for quality, a team lead confirms
    anyone = true
    reasons = ["QUAL"]
    confirm_minutes = 5
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kanban_terminal.domain.card_ids import has_valid_check
from kanban_terminal.domain.runway import RunwaySettings

_Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
_CardId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{2,40}$")]
Problems = list[tuple[tuple[str | int, ...], str]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunwayConfig(_Model):
    window_hours: float = Field(8.0, gt=0, le=7 * 24)
    """Consumption is measured over this sliding window (one shift by default)."""
    recent_bins: int = Field(2, ge=2, le=100)
    """The pace over the last this many empties counts too, when faster: a demand spike shows at once."""
    min_bins: int = Field(2, ge=2, le=100)
    """Fewer empties than this in the window: the loop's planned rate is used."""
    margin_lead_times: float = Field(1.0, gt=0, le=20)
    """A loop is at risk (amber on the board, a material warning) when its runway is below this many
    planned lead times: a bin signalled empty now would not be back in time."""
    deadband: float = Field(0.1, ge=0, le=5)
    """The warning clears only when the runway is back above margin x (1 + deadband): one
    disruption, one warning (ISA-18.2 deadband)."""
    check_seconds: float = Field(30.0, ge=1, le=3600)
    """How often `serve` and the screen recompute every runway (scans and upstream answers also
    trigger it at once)."""
    warnings: bool = True
    """Raise a material andon CALL (reason MAT) when a loop's runway drops below its margin."""

    def settings(self) -> RunwaySettings:
        return RunwaySettings(
            window=timedelta(hours=self.window_hours),
            recent_bins=self.recent_bins,
            min_bins=self.min_bins,
            margin_lead_times=self.margin_lead_times,
            deadband=self.deadband,
        )


class Reserve(_Model):
    loop: _Ident
    """The critical loop this contingency reserve backs (must be listed under [[loops]])."""
    card_ids: tuple[_CardId, ...] = Field(min_length=1, max_length=20)
    """The reserve bins' own cards ("red cards"), one per reserve bin. Scanning one means the line
    draws on the reserve: an expedite request upstream and a material warning."""


class QualityStopSettings(_Model):
    anyone: bool = False
    """An operator may stop the line for a quality reason with no PIN (the Toyota cord); a team lead
    must confirm (acknowledge) or release (resolve) it."""
    reasons: tuple[_Ident, ...] = ("QUAL",)
    """Reason codes anyone may stop for; each must be configured and allow `stop`."""
    confirm_minutes: float = Field(5.0, gt=0, le=240)
    """A stop nobody with team-lead authority confirmed within this time escalates to the next tier."""


class _Named(Protocol):
    @property
    def id(self) -> str: ...


class _Reason(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def kinds(self) -> tuple[str, ...]: ...


class _Terminal(Protocol):
    @property
    def require_check_character(self) -> bool: ...


class _Config(Protocol):
    """The parts of `TerminalConfig` the checks read (config.py imports this module, not back)."""

    @property
    def loops(self) -> Iterable[_Named]: ...
    @property
    def terminal(self) -> _Terminal: ...
    @property
    def andon_reasons(self) -> Iterable[_Reason]: ...
    @property
    def reserves(self) -> tuple[Reserve, ...]: ...
    @property
    def quality_stop(self) -> QualityStopSettings: ...


def check_resilience(cfg: _Config, owner: dict[str, str]) -> Problems:
    """Cross-checks of the three sections against the loops, cards and reasons (`owner`: card ->
    loop of every loop card); reserve cards are added to `owner` so nothing uses an id twice."""
    problems: Problems = []
    loops = {lp.id for lp in cfg.loops}
    reserved: set[str] = set()
    for i, reserve in enumerate(cfg.reserves):
        if reserve.loop not in loops:
            problems.append((("reserves", i, "loop"), f"unknown loop {reserve.loop!r}"))
        if reserve.loop in reserved:
            problems.append((("reserves", i, "loop"), f"loop {reserve.loop!r} has two [[reserves]]"))
        reserved.add(reserve.loop)
        for j, card in enumerate(c.upper() for c in reserve.card_ids):
            if card in owner:
                problems.append((("reserves", i, "card_ids", j), f"card {card} is also in {owner[card]}"))
            owner[card] = f"the reserve of {reserve.loop}"
            if cfg.terminal.require_check_character and not has_valid_check(card):
                problems.append((("reserves", i, "card_ids", j), f"card {card} has no valid check character"))
    reasons = {r.code: r for r in cfg.andon_reasons}
    if cfg.quality_stop.anyone:
        for i, code in enumerate(cfg.quality_stop.reasons):
            reason = reasons.get(code)
            if reason is None:
                problems.append((("quality_stop", "reasons", i), f"unknown reason {code!r}"))
            elif "stop" not in reason.kinds:
                problems.append((("quality_stop", "reasons", i), f"reason {code!r} does not allow stop"))
    return problems


def reserve_cards(cfg: _Config) -> dict[str, str]:
    """Red card id -> the loop whose reserve it is."""
    return {card.upper(): r.loop for r in cfg.reserves for card in r.card_ids}
