"""The supplier scorecard's resilience figures: lead-time variance, delivery in full, re-routes and
disruption response, per source (issues 17, 18). Pure arithmetic over `Cycle`s; no I/O, no clock.

Definitions (nearest-rank percentiles, as domain/metrics.py, so a figure can be checked by hand):
- lead-time spread: p90 - p50 of delivered lead times; coefficient of variation: sample standard
  deviation / mean (needs two deliveries). These two, not the mean, decide how much safety stock a
  source forces.
- in full: of the deliveries, those with nothing recorded short or damaged at the delivery scan.
- re-routed share: requests a team lead moved away from this source / requests closed at it.
- disruption response: from the first warning upstream gave about a request (delayed / at risk) to
  the line being safe: the delivery, the re-route to the second source, or a reserve drawn for it,
  whichever came first. A disruption with none of these yet is counted as open.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kanban_terminal.domain.metrics import Cycle, percentile

SAFE_STATUSES = frozenset({"delivered", "rerouted"})


@dataclass(frozen=True)
class SourceResilience:
    """The resilience part of one source's scorecard."""

    source: str
    deliveries: int
    lead_time_p50_s: float | None
    lead_time_p90_s: float | None
    spread_s: float | None
    """p90 - p50 of delivered lead times."""
    cv: float | None
    """Coefficient of variation of delivered lead times (sample stdev / mean)."""
    in_full_rate: float | None
    """Deliveries with nothing short or damaged / deliveries."""
    short_parts: int
    damaged_parts: int
    rerouted: int
    rerouted_share: float | None
    """Re-routed / closed requests of this source."""
    disruptions: int
    """Requests upstream warned about (delayed or at risk)."""
    open_disruptions: int
    """Of those, the ones with the line not yet safe."""
    response_p50_s: float | None
    response_max_s: float | None


def safe_at(cycle: Cycle) -> datetime | None:
    """When the line was safe again after the cycle's trouble (None: not yet, or no trouble)."""
    if cycle.trouble_at is None:
        return None
    options = [t for t in (cycle.safe_at, cycle.closed_at if cycle.status in SAFE_STATUSES else None) if t]
    return min(options) if options else None


def source_resilience(source: str, cycles: Sequence[Cycle]) -> SourceResilience:
    """The resilience figures of `source` over its `cycles` (requests raised at it in the window)."""
    closed = [c for c in cycles if c.closed_at is not None]
    done = [c for c in closed if c.delivered]
    leads = [c.lead_time_s for c in done if c.lead_time_s is not None]
    p50, p90 = percentile(leads, 50), percentile(leads, 90)
    mean = statistics.fmean(leads) if leads else None
    cv = statistics.stdev(leads) / mean if len(leads) >= 2 and mean else None
    rerouted = sum(1 for c in closed if c.status == "rerouted")
    troubled = [c for c in cycles if c.trouble_at is not None]
    responses: list[float] = []
    for c in troubled:
        safe = safe_at(c)
        if safe is not None and c.trouble_at is not None:
            responses.append(max(0.0, (safe - c.trouble_at).total_seconds()))
    return SourceResilience(
        source=source,
        deliveries=len(done),
        lead_time_p50_s=p50,
        lead_time_p90_s=p90,
        spread_s=p90 - p50 if p50 is not None and p90 is not None else None,
        cv=cv,
        in_full_rate=sum(1 for c in done if c.in_full) / len(done) if done else None,
        short_parts=sum(c.short_qty for c in done),
        damaged_parts=sum(c.damaged_qty for c in done),
        rerouted=rerouted,
        rerouted_share=rerouted / len(closed) if closed else None,
        disruptions=len(troubled),
        open_disruptions=len(troubled) - len(responses),
        response_p50_s=percentile(responses, 50),
        response_max_s=max(responses) if responses else None,
    )
