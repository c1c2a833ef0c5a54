"""Red cards (issue 18): what scanning a critical loop's reserve card writes and says.

A red card is a card of its loop (services/terminal.py adds `[[reserves]]` cards to the card map),
so its scan takes the ordinary road: bin empty, request raised, one transaction. This module adds
what makes it a reserve draw: a `reserve_drawn` row in the same transaction (metrics count them),
the words on the banner, and `expedite` on its request message (services/outbox.py). The material
warning is raised by the runway monitor right after the commit (services/runway.py), linked to the
request, and resolved when the refill is delivered; the delivery puts the reserve back.

`reserve_advice` and its renderings are the sizing report's reserve part (domain/sizing.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kanban_terminal.config import TerminalConfig
from kanban_terminal.domain.text import escape_external
from kanban_terminal.resilience_config import reserve_cards
from kanban_terminal.storage import card_log

if TYPE_CHECKING:
    from kanban_terminal.domain.sizing import LoopHistory, ReserveAdvice

RESERVE_DRAWN = (
    "RESERVE drawn: red card {card} ({loop}). Expedite request sent upstream; "
    "the team lead is called. Put the card on the reserve rack's refill board."
)


def reserve_drawn_row(
    card_id: str,
    loop_id: str,
    request_id: str | None,
    source: str,
    actor: str | None,
    now: datetime,
    at: datetime,
) -> card_log.LogEntry:
    """The log row that counts one reserve draw, in the scan's own transaction."""
    return card_log.LogEntry(
        occurred_at=at,
        recorded_at=now,
        event="reserve_drawn",
        card_id=card_id,
        loop_id=loop_id,
        from_state=None,
        to_state=None,
        request_id=request_id,
        actor=actor,
        source=escape_external(source, 80),
        detail="red card: the line draws on the contingency reserve; expedite request raised",
    )


def reserve_advice(
    config: TerminalConfig, histories: list[LoopHistory], *, scan_delay_s: float
) -> list[tuple[LoopHistory, ReserveAdvice | None, int]]:
    """Each loop's reserve advice and the red cards it has now (for `sizing`)."""
    # Imported by the sizing report only: every scan imports this module for RESERVE_DRAWN, and
    # domain.sizing with domain.metrics cost `serve` ~0.2 MB it never used (issue 19).
    from kanban_terminal.domain.sizing import recommend_reserve

    have = Counter(reserve_cards(config).values())
    return [(h, recommend_reserve(h, scan_delay_s=scan_delay_s), have[h.loop_id]) for h in histories]


def reserve_lines(advices: list[tuple[LoopHistory, ReserveAdvice | None, int]]) -> list[str]:
    out = [
        "",
        "Contingency reserve (red cards): bins = ceil((p95 demand rate x p95 lead time - (N - 1) x C) / C);",
        "stockouts replayed on the recorded history with the cards, then with the reserve added",
        f"{'loop':<14}{'spike/h':>8} {'L95 h':>6} {'have':>5} {'rec':>4}  stockouts without -> with reserve",
    ]
    for h, a, have in advices:
        if a is None:
            out.append(f"{h.loop_id:<14} not enough history")
            continue
        out.append(
            f"{a.loop_id:<14}{a.spike_rate_per_h:>8.1f} {a.lead_time_p95_h:>6.2f} {have:>5} {a.bins:>4}  "
            f"{a.without.stockouts} ({a.without.stockout_h:.1f} h) -> "
            f"{a.with_reserve.stockouts} ({a.with_reserve.stockout_h:.1f} h)"
        )
    return out


def reserve_json(advices: list[tuple[LoopHistory, ReserveAdvice | None, int]]) -> dict[str, dict[str, Any]]:
    """Loop id -> its reserve advice, for `sizing --json`."""
    return {
        h.loop_id: {
            "reserve_cards": have,
            "reserve_recommended": a.bins if a else None,
            "exposure_parts": round(a.exposure, 1) if a else None,
            "replay_stockouts_without_reserve": a.without.stockouts if a else None,
            "replay_stockouts_with_reserve": a.with_reserve.stockouts if a else None,
        }
        for h, a, have in advices
    }
