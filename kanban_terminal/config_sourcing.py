"""Second sources and delivery-in-full settings of the configuration (issues 17, 18).

Kept apart from config.py (near its 400-line limit) and hooked in with a few lines: the models of
`[[second_sources]]` and `[delivery]`, and their cross-checks against the rest of the file. Like
config.py it imports no layer: plain data every layer may read.

    [[second_sources]]
    loop = "L-ST10-HOUSING"     # the loop that may be re-routed
    source = "WH2"              # its alternate source (listed under [[sources]])

    [delivery]
    damage_reason = "QUAL"      # the andon reason of the quality call a damaged delivery raises
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Problems = list[tuple[tuple[str | int, ...], str]]


class SecondSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    loop: Ident
    """The loop that may be re-routed (listed under [[loops]])."""
    source: Ident
    """Its alternate source (listed under [[sources]], not the loop's own source). A team lead
    re-routes the loop there with badge + PIN, and back the same way."""


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    damage_reason: Ident = "QUAL"
    """Andon reason code of the quality CALL a delivery with damaged parts raises (when set, a
    configured reason that allows `call`; the default QUAL raises nothing on a line without it)."""


def check_sourcing(
    second_sources: Sequence[SecondSource],
    delivery: DeliverySettings,
    *,
    loop_sources: Mapping[str, str],
    sources: set[str],
    reason_kinds: Mapping[str, Sequence[str]],
) -> Problems:
    """The problems of `[[second_sources]]` and `[delivery]` against the rest of the configuration.

    Args:
        loop_sources: loop id -> its configured source.
        sources: the configured source ids.
        reason_kinds: andon reason code -> the kinds it allows.
    """
    problems: Problems = []
    seen: set[str] = set()
    for i, second in enumerate(second_sources):
        where: tuple[str | int, ...] = ("second_sources", i)
        if second.loop in seen:
            problems.append(((*where, "loop"), f"loop {second.loop!r} already has a second source"))
        seen.add(second.loop)
        own = loop_sources.get(second.loop)
        if own is None:
            problems.append(((*where, "loop"), f"unknown loop {second.loop!r}"))
        if second.source not in sources:
            problems.append(
                ((*where, "source"), f"unknown source {second.source!r}: add it under [[sources]]")
            )
        elif own == second.source:
            problems.append(((*where, "source"), f"{second.source!r} is already the loop's own source"))
    # Checked only when set: a config from before [delivery] existed, with no QUAL reason, stays
    # valid; its damaged deliveries are recorded and say that no quality call was raised.
    if "damage_reason" in delivery.model_fields_set:
        kinds = reason_kinds.get(delivery.damage_reason)
        if kinds is None:
            problems.append(
                (("delivery", "damage_reason"), f"unknown andon reason {delivery.damage_reason!r}")
            )
        elif "call" not in kinds:
            problems.append((("delivery", "damage_reason"), "this reason does not allow a call"))
    return problems


def second_source_of(second_sources: Sequence[SecondSource], loop_id: str) -> str | None:
    """The alternate source a loop names, or None."""
    return next((s.source for s in second_sources if s.loop == loop_id), None)
