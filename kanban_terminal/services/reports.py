"""Reading history into the pure metrics and sizing models (domain/metrics, andon_metrics, sizing).

Each function is one read snapshot that builds domain dataclasses; the arithmetic lives in `domain/`.
Andon records are rebuilt from the card log (rows with `andon_id`) and its structured columns
(andon_kind, andon_reason, station, loop_id, downtime_s; migration 0006), never from `detail` text.
The andon feature's own table is not read here, so this works on any terminal's log; only the loop of
a material andon logged before 0006 (when `loop_id` was not written) is found through its card.
The SQL is in storage/report_reads.py; this module holds none.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from kanban_terminal.domain.andon_metrics import AndonRecord, records_from_log
from kanban_terminal.domain.metrics import (
    Cycle,
    LoopMetrics,
    SourceMetrics,
    cycles_by,
    loop_metrics,
    source_metrics,
)
from kanban_terminal.domain.scorecard import SourceResilience, source_resilience
from kanban_terminal.domain.shifts import UTC_CALENDAR, ShiftCalendar
from kanban_terminal.domain.sizing import LoopHistory
from kanban_terminal.services import andon_elapsed
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import report_reads


def read_cycles(terminal: Terminal, since: datetime) -> list[Cycle]:
    """Requests raised since `since`, plus every request still open."""
    return report_reads.cycles(terminal.db, since)


def read_andon_records(terminal: Terminal, since: datetime) -> list[AndonRecord]:
    """Andons raised since `since`, folded from their card-log rows; an open one with its time since
    the raise on the monotonic clock where it has an anchor (services/andon_elapsed.py)."""
    records = records_from_log(report_reads.andon_log_events(terminal.db, since))
    open_ids = [r.id for r in records if r.resolved_at is None]
    running = andon_elapsed.running_of(terminal, open_ids, terminal.clock())
    return [replace(r, running_s=running[r.id].total_seconds()) if r.id in running else r for r in records]


def cards_by_state(terminal: Terminal) -> dict[str, Counter[str]]:
    return report_reads.cards_by_state(terminal.db)


@dataclass(frozen=True)
class Report:
    """Everything the metrics screen and `kanban-terminal metrics` show."""

    since: datetime
    now: datetime
    loops: tuple[LoopMetrics, ...]
    sources: tuple[tuple[str, str, SourceMetrics], ...]
    """(source id, kind, metrics)."""
    andons: tuple[AndonRecord, ...]
    resilience: tuple[SourceResilience, ...] = ()
    """Per source: lead-time variance, in full, re-routed share, disruption response (issue 18)."""
    calendar: ShiftCalendar = UTC_CALENDAR
    """The plant's zone and shifts (`[site]`): days and shifts are counted in it."""


def build_report(terminal: Terminal, days: int = 28) -> Report:
    """Loop and source metrics and the andon records of the last `days` days."""
    now = terminal.clock()
    since = now - timedelta(days=days)
    cycles = read_cycles(terminal, since)
    andons = read_andon_records(terminal, since)
    states = cards_by_state(terminal)
    per_loop = cycles_by(cycles, "loop_id")
    material = Counter(a.material for a in andons if a.is_material and not a.cancelled)
    loops = []
    for loop in terminal.config.loops:
        by_state = states.get(loop.id, Counter())
        loops.append(
            loop_metrics(
                loop.id,
                per_loop.get(loop.id, []),
                planned_lead_time_s=loop.lead_time_minutes * 60,
                cards=sum(by_state.values()) or len(loop.card_id_list()),
                now=now,
                cards_by_state=dict(by_state),
                material_andons=material.get(loop.id, 0),
                days=min(days, 14),  # the sparkline: two weeks fit beside the figures
                calendar=terminal.config.site.calendar,
            )
        )
    per_source = cycles_by(cycles, "source")
    sources = tuple(
        (s.id, s.kind, source_metrics(s.id, per_source.get(s.id, []))) for s in terminal.config.sources
    )
    resilience = tuple(source_resilience(s.id, per_source.get(s.id, [])) for s in terminal.config.sources)
    return Report(since, now, tuple(loops), sources, tuple(andons), resilience, terminal.config.site.calendar)


def loop_histories(terminal: Terminal, days: int = 365) -> list[LoopHistory]:
    """Each configured loop's recorded bin-empties (request raises) and lead times over `days` days."""
    since = terminal.clock() - timedelta(days=days)
    loops = terminal.config.loops
    per_loop = report_reads.loop_requests(terminal.db, [loop.id for loop in loops], since)
    out = []
    for loop in loops:
        got = per_loop[loop.id]
        empties = [at for at, _, _ in got.requests]
        leads = [(at, lead) for at, status, lead in got.requests if status == "delivered" and lead]
        leads = sorted([*leads, *got.extra_leads])
        out.append(
            LoopHistory(
                loop_id=loop.id,
                container_quantity=loop.container_quantity,
                configured_cards=got.cards or len(loop.card_id_list()),
                planned_lead_time_s=loop.lead_time_minutes * 60,
                empties=tuple(empties),
                lead_times_s=tuple(float(lead) for _, lead in leads),
                raised=tuple(at for at, _ in leads),
                source_kind=terminal.config.source(loop.source).kind,
            )
        )
    return out
