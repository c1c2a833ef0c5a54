"""Andon metrics: why the line stopped, where, when, and how fast material andons were answered.

Pure: works on `AndonRecord`s (one per andon, built by `services/andon_records.py` from the card log)
so it does not depend on how the andon feature stores its own table. Downtime counts only `stop`
andons (a `call` does not stop the line), from raise to resolution; an andon still open counts up to
`now`; a cancelled one counts for nothing (it was raised in error). Shifts are given as local start
hours; days and shifts are in the zone passed in (the plant's), not UTC, because "Tuesday's
late shift" is a local notion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from kanban_terminal.domain.metrics import percentile


@dataclass(frozen=True)
class AndonRecord:
    """One andon from raise to end, as far as metrics need it."""

    id: str
    kind: str
    """`stop` (the line stopped) or `call` (help called, line running)."""
    reason: str
    station: str
    raised_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    material: str | None = None
    """The loop (or part) a material andon is about; None for other andons."""
    cancelled: bool = False

    def downtime_s(self, now: datetime) -> float:
        if self.kind != "stop" or self.cancelled:
            return 0.0
        return max(0.0, ((self.resolved_at or now) - self.raised_at).total_seconds())

    @property
    def is_material(self) -> bool:
        return self.material is not None or self.reason.upper() in MATERIAL_REASONS


MATERIAL_REASONS = frozenset({"MAT", "MATERIAL"})


@dataclass(frozen=True)
class ParetoRow:
    key: str
    count: int
    downtime_s: float
    share: float
    """This row's share of all downtime (of count when there was no downtime)."""
    cumulative: float


def pareto(records: Iterable[AndonRecord], by: str, now: datetime) -> list[ParetoRow]:
    """Count and downtime per `reason` or `station`, worst (most downtime, then most andons) first."""
    count: dict[str, int] = {}
    down: dict[str, float] = {}
    for r in records:
        if r.cancelled:
            continue
        key = getattr(r, by)
        count[key] = count.get(key, 0) + 1
        down[key] = down.get(key, 0.0) + r.downtime_s(now)
    order = sorted(count, key=lambda k: (-down[k], -count[k], k))
    total_down = sum(down.values())
    total_count = sum(count.values())
    rows, running = [], 0.0
    for key in order:
        share = down[key] / total_down if total_down else count[key] / total_count
        running += share
        rows.append(ParetoRow(key, count[key], down[key], share, min(running, 1.0)))
    return rows


def shift_of(at: datetime, starts: Sequence[int], zone: tzinfo) -> tuple[date, int]:
    """(production day, shift number 1..n) of `at`; a night shift past midnight belongs to the day
    it started on."""
    local = at.astimezone(zone)
    hours = sorted(starts)
    for i in range(len(hours) - 1, -1, -1):
        if local.hour >= hours[i]:
            return local.date(), i + 1
    # Before the first start: the previous day's last shift.
    return (local - timedelta(days=1)).date(), len(hours)


@dataclass(frozen=True)
class PeriodRow:
    day: date
    shift: int | None
    """None for per-day rows."""
    count: int
    downtime_s: float


def per_period(
    records: Iterable[AndonRecord], now: datetime, zone: tzinfo, shift_starts: Sequence[int] | None = None
) -> list[PeriodRow]:
    """Andons and downtime per day (or per shift when `shift_starts` is given), oldest first.

    Each andon counts in the period it was raised in.
    """
    buckets: dict[tuple[date, int | None], list[float]] = {}
    for r in records:
        if r.cancelled:
            continue
        if shift_starts:
            day, shift = shift_of(r.raised_at, shift_starts, zone)
            key: tuple[date, int | None] = (day, shift)
        else:
            key = (r.raised_at.astimezone(zone).date(), None)
        buckets.setdefault(key, []).append(r.downtime_s(now))
    return [
        PeriodRow(day, shift, len(v), sum(v))
        for (day, shift), v in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    ]


@dataclass(frozen=True)
class ResponseStats:
    """How long material andons took: to acknowledgement and to resolution (material at the line)."""

    count: int
    open_now: int
    ack_p50_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    resolve_max_s: float | None


def material_response(records: Iterable[AndonRecord]) -> ResponseStats:
    """Response times of resolved material andons (cancelled ones left out, open ones counted)."""
    mats = [r for r in records if r.is_material and not r.cancelled]
    acks = [(r.acknowledged_at - r.raised_at).total_seconds() for r in mats if r.acknowledged_at]
    done = [(r.resolved_at - r.raised_at).total_seconds() for r in mats if r.resolved_at]
    return ResponseStats(
        count=len(mats),
        open_now=sum(1 for r in mats if r.resolved_at is None),
        ack_p50_s=percentile(acks, 50),
        resolve_p50_s=percentile(done, 50),
        resolve_p90_s=percentile(done, 90),
        resolve_max_s=max(done) if done else None,
    )


def parse_detail(detail: str) -> dict[str, str]:
    """`key=value; key=value` (the andon rows' detail) into a dict; other text is ignored."""
    out: dict[str, str] = {}
    for item in detail.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key:
            out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class AndonLogEvent:
    """One card-log row of an andon, as the reader needs it."""

    andon_id: str
    event: str
    occurred_at: datetime
    detail: str


def records_from_log(events: Iterable[AndonLogEvent]) -> list[AndonRecord]:
    """Fold andon log rows (any order) into one record per andon; andons without a raise row are
    skipped (the window started after the raise).

    Event names: andon_raised, andon_acknowledged, andon_resolved, andon_cancelled, andon_escalated.
    The raise row's detail carries `kind=`, `reason=`, `station=` and, for material andons, `loop=`
    or `part=`; any row may repeat or add keys (a later row wins).
    """
    by_id: dict[str, list[AndonLogEvent]] = {}
    for e in events:
        by_id.setdefault(e.andon_id, []).append(e)
    records = []
    for andon_id, rows in by_id.items():
        rows.sort(key=lambda e: e.occurred_at)
        raised = next((e for e in rows if e.event == "andon_raised"), None)
        if raised is None:
            continue
        info: dict[str, str] = {}
        for e in rows:
            info.update(parse_detail(e.detail))
        ack = next((e.occurred_at for e in rows if e.event == "andon_acknowledged"), None)
        end = next((e for e in rows if e.event in ("andon_resolved", "andon_cancelled")), None)
        records.append(
            AndonRecord(
                id=andon_id,
                kind=info.get("kind", "call"),
                reason=info.get("reason", "?"),
                station=info.get("station", "?"),
                raised_at=raised.occurred_at,
                acknowledged_at=ack,
                resolved_at=end.occurred_at if end else None,
                material=info.get("loop") or info.get("part"),
                cancelled=end is not None and end.event == "andon_cancelled",
            )
        )
    records.sort(key=lambda r: r.raised_at)
    return records
