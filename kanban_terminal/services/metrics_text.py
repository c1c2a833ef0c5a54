"""Metrics and sizing as lines of text and as JSON: one rendering for the CLI and the metrics screen.

No Textual here (the CLI must not import it); the screen shows these same lines, so what a
maintenance engineer reads at the terminal and in a cron mail is the same figure.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass
from typing import Any

from kanban_terminal.config import TerminalConfig
from kanban_terminal.domain.andon_metrics import material_response, pareto, per_period
from kanban_terminal.domain.metrics import bar, fmt_duration, fmt_short, sparkline
from kanban_terminal.domain.sizing import (
    LoopHistory,
    Recommendation,
    ReplayResult,
    Segment,
    recommend,
    replay,
    segment,
)
from kanban_terminal.services.reports import Report

WIDTH = 76
"""No line is wider: the metrics screen shows 76 columns of an 80-column terminal (a margin each side
and the scrollbar), and `metrics` in an 80-column shell wraps nothing (issue floor80: the legends
were 86-97 columns, the loop rows 84-98, the resilience table 83)."""
TREND_DAYS = 10
"""Days of the loops' trend column: what is left of WIDTH (the JSON has every day)."""


def _legend(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent)


def _fit(items: list[str], room: int) -> str:
    """`items` joined by commas, as many as fit in `room` columns (the first always): "-" for none."""
    shown = items[:1]
    for item in items[1:]:
        if len(", ".join([*shown, item])) > room:
            break
        shown.append(item)
    return ", ".join(shown) or "-"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def _cards(by_state: dict[str, int]) -> str:
    """`in use / waiting for a refill / lost` cards of a loop."""
    waiting = sum(n for state, n in by_state.items() if state not in ("in_use", "lost", "suspended"))
    return f"{by_state.get('in_use', 0)}/{waiting}/{by_state.get('lost', 0)}"


def report_lines(r: Report) -> list[str]:
    days = (r.now - r.since).days
    out = _legend(
        f"Loops, last {days} days. p50 / p90 / plan: lead time (! p90 over plan); late: overdue now; "
        "outs: stockouts; MA: material andons; cards: in use / waiting / lost; "
        f"trend: deliveries a day, last {TREND_DAYS} days"
    )
    out.append(
        f"{'loop':<10}{'cycles':>6} {'p50':>6} {'p90':>7} {'plan':>6} {'ontime':>6} {'late':>4} "
        f"{'outs':>4} {'MA':>3} {'cards':>6} trend"
    )
    for m in r.loops:
        late = m.lead_time_p90_s is not None and m.lead_time_p90_s > m.planned_lead_time_s
        out.append(
            f"{m.loop_id:<10}{m.cycles:>6} {fmt_short(m.lead_time_p50_s):>6} "
            f"{fmt_short(m.lead_time_p90_s):>6}{'!' if late else ' '}{fmt_short(m.planned_lead_time_s):>6} "
            f"{_pct(m.on_time_rate):>6} {m.overdue_now:>4} {m.stockouts:>4} {m.material_andons:>3} "
            f"{_cards(m.cards_by_state):>6} {sparkline(m.daily_cycles[-TREND_DAYS:])}"
        )
    out += ["", "Sources (supplier scorecard: on time in full, lead time mean and spread)"]
    out.append(f"{'source':<9}{'kind':<11}{'closed':>6} {'OTIF':>5} {'mean':>6} {'spread':>6}  worst delays")
    for source, kind, s in r.sources:
        row = (
            f"{source:<9}{kind:<11}{s.requests:>6} {_pct(s.otif_rate):>5} "
            f"{fmt_short(s.lead_time_mean_s):>6} {fmt_short(s.lead_time_stdev_s):>6}  "
        )
        out.append(row + _fit([f"{d.card_id} +{fmt_short(d.late_s)}" for d in s.worst[:3]], WIDTH - len(row)))
    out += resilience_lines(r)
    out += andon_lines(r)
    return out


def resilience_lines(r: Report) -> list[str]:
    """The scorecard's resilience table (domain/scorecard.py): variance, in full, re-routes, disruptions."""
    out = [""] + _legend(
        "Sources, resilience: lead time p50 / p90, spread (p90-p50) and CV; in full, short and "
        "damaged parts; re-routed share; disruptions (open); response, first warning to line safe: "
        "p50 (resp) and worst"
    )
    out.append(
        f"{'source':<9}{'p50':>6} {'p90':>6} {'spread':>6} {'CV':>4} {'full':>5} {'short':>5} {'dmg':>3} "
        f"{'rerout':>6} {'disr':>4} {'resp':>6} {'worst':>6}"
    )
    for x in r.resilience:
        cv = f"{x.cv:.2f}" if x.cv is not None else "-"
        disr = f"{x.disruptions}" + (f"({x.open_disruptions})" if x.open_disruptions else "")
        out.append(
            f"{x.source:<9}{fmt_short(x.lead_time_p50_s):>6} {fmt_short(x.lead_time_p90_s):>6} "
            f"{fmt_short(x.spread_s):>6} {cv:>4} {_pct(x.in_full_rate):>5} {x.short_parts:>5} "
            f"{x.damaged_parts:>3} {_pct(x.rerouted_share):>6} {disr:>4} {fmt_short(x.response_p50_s):>6} "
            f"{fmt_short(x.response_max_s):>6}"
        )
    return out


def andon_lines(r: Report) -> list[str]:
    out = ["", f"Andons: {len(r.andons)} raised (downtime counts line stops only)"]
    for by in ("reason", "station"):
        rows = pareto(r.andons, by, r.now)
        top = max((p.downtime_s for p in rows), default=0.0)
        out.append(f"  by {by}, worst first:")
        for p in rows:
            out.append(
                f"    {p.key:<8}{p.count:>5} andons  {fmt_duration(p.downtime_s):>11} down  "
                f"{p.cumulative * 100:>4.0f} % cum  {bar(p.downtime_s, top, 20)}"
            )
    cal = r.calendar
    days = per_period(r.andons, r.now, cal)
    out.append(f"  per day ({cal.zone_name}), downtime: " + sparkline([d.downtime_s for d in days[-28:]]))
    for shift, values in shift_downtime(r).items():
        out.append(
            f"  shift {shift} (from {cal.start_label(shift)} {cal.zone_name}): "
            f"{fmt_duration(sum(values))} down over {len(values)} shifts"
        )
    m = material_response(r.andons)
    out += [
        f"  material andons: {m.count} ({m.open_now} open), acknowledged p50 {fmt_duration(m.ack_p50_s)},",
        f"    material at the line p50 {fmt_duration(m.resolve_p50_s)}, p90 {fmt_duration(m.resolve_p90_s)}, "
        f"worst {fmt_duration(m.resolve_max_s)}",
    ]
    return out


def shift_downtime(r: Report) -> dict[int, list[float]]:
    """Per shift number, the downtime of each of its shifts that had an andon (the plant's shifts)."""
    by_shift: dict[int, list[float]] = {}
    for s in per_period(r.andons, r.now, r.calendar, by_shift=True):
        by_shift.setdefault(s.shift or 0, []).append(s.downtime_s)
    return dict(sorted(by_shift.items()))


def report_json(r: Report) -> dict[str, Any]:
    cal = r.calendar
    return {
        "since": r.since.isoformat(),
        "now": r.now.isoformat(),
        "timezone": cal.zone_name,
        "shift_starts": [cal.start_label(n) for n in range(1, len(cal.starts) + 1)],
        "loops": [
            {
                "loop": m.loop_id,
                "cycles": m.cycles,
                "lead_time_p50_s": m.lead_time_p50_s,
                "lead_time_p90_s": m.lead_time_p90_s,
                "planned_lead_time_s": m.planned_lead_time_s,
                "on_time_rate": m.on_time_rate,
                "overdue_now": m.overdue_now,
                "stockouts": m.stockouts,
                "stockout_s": m.stockout_s,
                "material_andons": m.material_andons,
                "cards_by_state": m.cards_by_state,
                "daily_cycles": list(m.daily_cycles),
            }
            for m in r.loops
        ],
        "sources": [
            {
                "source": source,
                "kind": kind,
                "requests": s.requests,
                "otif_rate": s.otif_rate,
                "lead_time_mean_s": s.lead_time_mean_s,
                "lead_time_stdev_s": s.lead_time_stdev_s,
                "worst": [
                    {
                        "loop": d.request_loop,
                        "card": d.card_id,
                        "raised_at": d.raised_at.isoformat(),
                        "late_s": d.late_s,
                    }
                    for d in s.worst
                ],
            }
            for source, kind, s in r.sources
        ],
        "resilience": [asdict(x) for x in r.resilience],
        "andons": {
            by: [
                {"key": p.key, "count": p.count, "downtime_s": p.downtime_s, "share": p.share}
                for p in pareto(r.andons, by, r.now)
            ]
            for by in ("reason", "station")
        },
        "andon_periods": [
            {"day": p.day.isoformat(), "shift": p.shift, "andons": p.count, "downtime_s": p.downtime_s}
            for p in per_period(r.andons, r.now, cal, by_shift=True)
        ],
        # Seconds from raise to acknowledge and to resolve, as the log recorded them on the elapsed
        # clock (domain/andon_metrics.py): what the text's "material andons" lines print.
        "material_response": asdict(material_response(r.andons)),
    }


@dataclass(frozen=True)
class SizingRow:
    loop_id: str
    history: LoopHistory
    rec: Recommendation | None
    current: ReplayResult | None
    proposed: ReplayResult | None
    segment: Segment | None
    replay_ok_at: int | None = None
    """Smallest card count whose replay has at most 1 stockout per 100 bins (IFS-style check)."""


def sizing_rows(
    cfg: TerminalConfig, histories: list[LoopHistory], *, scan_delay_s: float, service: float
) -> list[SizingRow]:
    out = []
    for h in histories:
        rec = recommend(h, scan_delay_s=scan_delay_s, service_level=service)
        if rec is None:
            out.append(SizingRow(h.loop_id, h, None, None, None, None))
            continue
        current = replay(h.empties, h.lead_times_s, h.configured_cards, scan_delay_s=scan_delay_s)
        proposed = replay(h.empties, h.lead_times_s, rec.recommended, scan_delay_s=scan_delay_s)
        seg = segment(rec, source_kind=h.source_kind, planned_lead_time_s=h.planned_lead_time_s)
        allowed = len(h.empties) // 100
        ok_at = next(
            (
                n
                for n in range(1, rec.recommended + 6)
                if replay(h.empties, h.lead_times_s, n, scan_delay_s=scan_delay_s).stockouts <= allowed
            ),
            None,
        )
        out.append(SizingRow(h.loop_id, h, rec, current, proposed, seg, ok_at))
    return out


def advice(row: SizingRow) -> str:
    """The formula's advice, overruled by the replay when the recommended count would still have
    run out more than once per 100 bins on the recorded history."""
    rec = row.rec
    if rec is None:
        return "not enough history"
    if rec.samples >= 10 and row.replay_ok_at is not None and row.replay_ok_at > rec.recommended:
        why = f"the formula's {rec.recommended} still runs out in the replay"
        change = row.replay_ok_at - rec.configured
        # Worded as Recommendation.advice is: this said "add -1 card(s)" and "add 0 card(s)" when
        # the loop already had as many cards as the replay needs, or more (issue floor80).
        if change > 0:
            return f"add {change} card(s): {why}"
        if change < 0:
            return f"remove {-change} card(s), to {row.replay_ok_at}: {why}"
        return f"keep {rec.configured}: {why}"
    return rec.advice()


def sizing_lines(rows: list[SizingRow]) -> list[str]:
    out = [
        "Recommended cards: N = ceil(D x L x (1 + S) / C) + 1 bin in use; D, L measured, S from variability",
        "('ok at': fewest cards whose replay of the recorded history has at most 1 stockout per 100 bins)",
        f"{'loop':<14}{'D/h':>8} {'L h':>6} {'S':>5} {'now':>4} {'rec':>4}  "
        f"{'stockouts now -> rec (replayed)':<32} {'ok at':>5}  advice",
    ]
    for row in rows:
        if row.rec is None or row.current is None or row.proposed is None:
            out.append(f"{row.loop_id:<14} not enough history (needs 2 empties and 1 delivery)")
            continue
        rec = row.rec
        replayed = (
            f"{row.current.stockouts:>4} ({row.current.stockout_h:.1f} h) -> "
            f"{row.proposed.stockouts} ({row.proposed.stockout_h:.1f} h)"
        )
        out.append(
            f"{rec.loop_id:<14}{rec.demand_per_hour:>8.1f} {rec.lead_time_h:>6.2f} {rec.safety:>5.2f} "
            f"{rec.configured:>4} {rec.recommended:>4}  {replayed:<32} {row.replay_ok_at or '-':>5}  "
            f"{advice(row)}"
        )
        if row.segment is not None:
            out.append(f"{'':<14}hint: {row.segment.label}: {'; '.join(row.segment.reasons)}")
    return out


def sizing_json(rows: list[SizingRow]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {"loop": row.loop_id, "enough_history": row.rec is not None}
        if row.rec is not None and row.current is not None and row.proposed is not None:
            rec = row.rec
            item |= {
                "demand_per_hour": rec.demand_per_hour,
                "demand_cv": rec.demand_cv,
                "lead_time_h": rec.lead_time_h,
                "lead_time_cv": rec.lead_time_cv,
                "safety": rec.safety,
                "configured": rec.configured,
                "recommended": rec.recommended,
                "advice": advice(row),
                "replay_stockouts_configured": row.current.stockouts,
                "replay_stockouts_recommended": row.proposed.stockouts,
                "replay_ok_at": row.replay_ok_at,
                "segment": row.segment.label if row.segment else None,
                "segment_reasons": list(row.segment.reasons) if row.segment else [],
            }
        out.append(item)
    return out
