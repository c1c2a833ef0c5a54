"""Reading history into the pure metrics and sizing models (domain/metrics, andon_metrics, sizing).

Each function is one read snapshot that builds domain dataclasses; the arithmetic lives in `domain/`.
Andon records are rebuilt from the card log (rows with `andon_id`) and its structured columns
(andon_kind, andon_reason, station, loop_id, downtime_s; migration 0006), never from `detail` text.
The andon feature's own table is not read here, so this works on any terminal's log; only the loop of
a material andon logged before 0006 (when `loop_id` was not written) is found through its card.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from kanban_terminal.domain.andon_metrics import AndonLogEvent, AndonRecord, records_from_log
from kanban_terminal.domain.metrics import (
    Cycle,
    LoopMetrics,
    SourceMetrics,
    cycles_by,
    loop_metrics,
    source_metrics,
)
from kanban_terminal.domain.sizing import LoopHistory
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.types import to_text

# Stored timestamps are fixed-format ISO text with a Z (storage/types.py); fromisoformat reads them
# 30x faster than the strptime in types.from_text (0.9 vs 30 us), which counts over a year of rows.
parse_stored = datetime.fromisoformat


def read_cycles(terminal: Terminal, since: datetime) -> list[Cycle]:
    """Requests raised since `since`, plus every request still open."""
    with terminal.db.reading() as session:
        rows = (
            session.connection()
            .execute(
                text(
                    "SELECT loop_id, card_id, source, raised_at, due_at, closed_at, status "
                    "FROM replenishment_request WHERE raised_at >= :since OR closed_at IS NULL"
                ),
                {"since": to_text(since)},
            )
            .all()
        )
    return [
        Cycle(
            r[0],
            r[1],
            r[2],
            parse_stored(r[3]),
            parse_stored(r[4]),
            parse_stored(r[5]) if r[5] else None,
            r[6],
        )
        for r in rows
    ]


def read_andon_records(terminal: Terminal, since: datetime) -> list[AndonRecord]:
    """Andons raised since `since`, folded from their card-log rows."""
    with terminal.db.reading() as session:
        rows = (
            session.connection()
            .execute(
                text(
                    "SELECT andon_id, event, occurred_at, andon_kind, andon_reason, station, "
                    "coalesce(loop_id, (SELECT loop_id FROM card WHERE card.id = card_log.card_id)), "
                    "downtime_s FROM card_log WHERE andon_id IN "
                    "(SELECT andon_id FROM card_log WHERE event = 'andon_raised' AND occurred_at >= :since)"
                ),
                {"since": to_text(since)},
            )
            .all()
        )
    return records_from_log(
        AndonLogEvent(r[0], r[1], parse_stored(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows
    )


def cards_by_state(terminal: Terminal) -> dict[str, Counter[str]]:
    with terminal.db.reading() as session:
        rows = session.connection().execute(text("SELECT loop_id, state FROM card WHERE retired = 0")).all()
    out: dict[str, Counter[str]] = {}
    for loop_id, state in rows:
        out.setdefault(loop_id, Counter())[state] += 1
    return out


@dataclass(frozen=True)
class Report:
    """Everything the metrics screen and `kanban-terminal metrics` show."""

    since: datetime
    now: datetime
    loops: tuple[LoopMetrics, ...]
    sources: tuple[tuple[str, str, SourceMetrics], ...]
    """(source id, kind, metrics)."""
    andons: tuple[AndonRecord, ...]


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
            )
        )
    per_source = cycles_by(cycles, "source")
    sources = tuple(
        (s.id, s.kind, source_metrics(s.id, per_source.get(s.id, []))) for s in terminal.config.sources
    )
    return Report(since, now, tuple(loops), sources, tuple(andons))


def loop_histories(terminal: Terminal, days: int = 365) -> list[LoopHistory]:
    """Each configured loop's recorded bin-empties (request raises) and lead times over `days` days."""
    since = to_text(terminal.clock() - timedelta(days=days))
    out = []
    with terminal.db.reading() as session:
        conn = session.connection()
        for loop in terminal.config.loops:
            # Every bin-empty raises exactly one request at the same moment (scanning.py), so the
            # requests give both the empties and the lead times through one index range
            # (ix_request_loop_raised) instead of a scan of the log's bin_empty rows.
            rows = conn.execute(
                text(
                    "SELECT raised_at, status, lead_time_s FROM replenishment_request "
                    "WHERE loop_id = :loop AND raised_at >= :since ORDER BY raised_at"
                ),
                {"loop": loop.id, "since": since},
            ).all()
            empties = [parse_stored(r[0]) for r in rows]
            leads = [(at, r[2]) for at, r in zip(empties, rows, strict=True) if r[1] == "delivered" and r[2]]
            cards = conn.execute(
                text("SELECT count(*) FROM card WHERE loop_id = :loop AND retired = 0"), {"loop": loop.id}
            ).scalar_one()
            out.append(
                LoopHistory(
                    loop_id=loop.id,
                    container_quantity=loop.container_quantity,
                    configured_cards=cards or len(loop.card_id_list()),
                    planned_lead_time_s=loop.lead_time_minutes * 60,
                    empties=tuple(empties),
                    lead_times_s=tuple(float(lead) for _, lead in leads),
                    raised=tuple(at for at, _ in leads),
                    source_kind=terminal.config.source(loop.source).kind,
                )
            )
    return out
