"""Configuration of the kanban loops: the parts and the loops that feed them.

Split from config.py, which re-exports `Part` and `Loop` for the modules that import them from there.
`Ident` repeats config.py's pattern (config.py imports this module, so it is repeated, not imported),
as config_bins.py and config_sourcing.py do; `CardId` lives here, with `Loop`, its only user in config.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kanban_terminal.config_bins import upper_id
from kanban_terminal.domain.card_ids import generated_card_id
from kanban_terminal.domain.scans import LoopTerms

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
CardId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{2,40}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Part(_Model):
    number: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    """Part number as on the bin label."""
    description: str = ""
    """What the part is."""
    unit: str = "pcs"
    """Unit of the container quantity."""


@lru_cache(maxsize=1024)
def _loop_terms(lead_time_minutes: float, min_plausible_minutes: float | None) -> LoopTerms:
    """A loop's `LoopTerms` (cached by value: not a property cache, which pydantic's `model_copy`
    would carry over to a copy with another lead time; see site_settings.calendar_of)."""
    planned = timedelta(minutes=lead_time_minutes)
    if min_plausible_minutes is None:
        return LoopTerms(planned_lead_time=planned, min_plausible_lead_time=planned / 10)
    plausible = timedelta(minutes=min_plausible_minutes)
    return LoopTerms(planned_lead_time=planned, min_plausible_lead_time=plausible)


class Loop(_Model):
    id: Ident
    """Kanban loop id: one part at one point of use, fed from one source."""
    part: str
    """Part number (must be listed under [[parts]])."""
    station: Ident
    """Station id (must be listed under [[stations]])."""
    point_of_use: str
    """Rack / shelf position the bin sits in, as the floor names it."""
    source: Ident
    """Source id (must be listed under [[sources]])."""
    container_quantity: int = Field(gt=0, le=1_000_000)
    """Parts in one full bin."""
    cards: int | None = Field(None, ge=1, le=99)
    """Number of cards to generate (ids card_prefix + 01.. + check character)."""
    card_prefix: str | None = None
    """Prefix of generated card ids: digits and letters other than A I M O Q W Y Z."""
    card_ids: tuple[CardId, ...] | None = None
    """Explicit card ids, for cards already printed. Use instead of cards + card_prefix."""
    lead_time_minutes: float = Field(gt=0, le=60 * 24 * 90)
    """Planned replenishment lead time, empty signal to full bin back at the line."""
    safety_factor: float = Field(0.0, ge=0, le=5)
    """Additive safety factor S in N = D x L x (1 + S) / C."""
    min_plausible_lead_time_minutes: float | None = Field(None, ge=0)
    """A delivery scanned sooner than this after the request needs confirmation; default 10 % of
    the planned lead time."""
    material_andon: bool = True
    """Raise a material andon (CALL, reason MAT, linked to the card) when a request of this loop passes
    its due time with no delivery."""

    @property
    def terms(self) -> LoopTerms:
        """Built once per loop's settings: every signal and every runway pass asks for it."""
        return _loop_terms(self.lead_time_minutes, self.min_plausible_lead_time_minutes)

    @property
    def card_count(self) -> int:
        """How many cards the loop has, without building their ids: the runway asks it of every loop
        every 2 s while cards change (200 loops of 100 cards: 23 ms a tick through card_id_list)."""
        return len(self.card_ids) if self.card_ids is not None else (self.cards or 0)

    def card_id_list(self) -> tuple[str, ...]:
        if self.card_ids is not None:
            return tuple(upper_id(c) for c in self.card_ids)
        assert self.cards is not None and self.card_prefix is not None
        return tuple(generated_card_id(self.card_prefix, i) for i in range(1, self.cards + 1))
