"""Andon metrics: why the line stopped, where, when, and how fast material andons were answered.

Pure: works on `AndonRecord`s (one per andon, folded by `records_from_log` from the card log's
andon rows, which `services/reports.py` reads) so it does not depend on how the andon feature stores
its own table. Every fact comes from a log column the use case wrote (kind, reason, station, loop,
downtime, elapsed); nothing is parsed out of the rows' `detail` text, which is only words for people.
Downtime counts only `stop` andons (a `call` does not stop the line), from raise to resolution as
the resolve row recorded it; an andon still open counts up to `now`, on the monotonic clock where
its elapsed anchor exists (`AndonRecord.running`, read by the caller); a cancelled one counts for
nothing (it was raised in error). Times to acknowledge and to resolve are the seconds since the raise
that the acknowledge and the resolve rows recorded on the andon's elapsed anchor (`elapsed_s`,
migration 0012), so a wall-clock step between raise and acknowledge bends nothing; a row without one
(no anchor, or written before 0012) gives the wall difference. Shifts are given as local start
hours; days and shifts are in the zone passed in (the plant's), not UTC, because "Tuesday's
late shift" is a local notion.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from kanban_terminal.domain.metrics import percentile
from kanban_terminal.domain.shifts import ShiftCalendar


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
    """The loop a material andon is about; None for other andons."""
    cancelled: bool = False
    recorded_downtime_s: float | None = None
    """The downtime the resolve row recorded; None while open (or for a log from before 0006)."""
    running_s: float | None = None
    """While open: seconds since the raise on the monotonic clock as of the read (the report's `now`),
    from the andon's elapsed anchor (services/andon_elapsed.py); None without an anchor."""
    acknowledged_s: float | None = None
    """Seconds from the raise to the acknowledge, as its row recorded them on the elapsed anchor;
    None: no anchor then, or a row from before 0012 (the wall difference counts)."""
    ended_s: float | None = None
    """Seconds from the raise to the resolve or cancel, likewise recorded; None likewise."""

    def to_acknowledge_s(self) -> float | None:
        """Raise to acknowledge (None: not acknowledged): the recorded elapsed, else the wall
        difference (never negative)."""
        if self.acknowledged_at is None:
            return None
        if self.acknowledged_s is not None:
            return self.acknowledged_s
        return max(0.0, (self.acknowledged_at - self.raised_at).total_seconds())

    def to_end_s(self) -> float | None:
        """Raise to resolve or cancel (None: still open), as `to_acknowledge_s`."""
        if self.resolved_at is None:
            return None
        if self.ended_s is not None:
            return self.ended_s
        return max(0.0, (self.resolved_at - self.raised_at).total_seconds())

    def downtime_s(self, now: datetime) -> float:
        if self.kind != "stop" or self.cancelled:
            return 0.0
        if self.resolved_at is not None and self.recorded_downtime_s is not None:
            return self.recorded_downtime_s
        if self.resolved_at is None and self.running_s is not None:
            return self.running_s  # a wall-clock step while it runs bends nothing
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


@dataclass(frozen=True)
class PeriodRow:
    day: date
    shift: int | None
    """None for per-day rows."""
    count: int
    downtime_s: float


def per_period(
    records: Iterable[AndonRecord], now: datetime, calendar: ShiftCalendar, *, by_shift: bool = False
) -> list[PeriodRow]:
    """Andons and downtime per local day (or per shift with `by_shift`) of the plant, oldest first.

    Each andon counts in the period it was raised in; days and shifts are the plant's
    (`ShiftCalendar`: its zone, its shift starts, DST days included).
    """
    buckets: dict[tuple[date, int | None], list[float]] = {}
    for r in records:
        if r.cancelled:
            continue
        if by_shift:
            day, shift = calendar.shift_of(r.raised_at)
            key: tuple[date, int | None] = (day, shift)
        else:
            key = (calendar.day_of(r.raised_at), None)
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
    acks = [s for r in mats if (s := r.to_acknowledge_s()) is not None]
    done = [s for r in mats if (s := r.to_end_s()) is not None]
    return ResponseStats(
        count=len(mats),
        open_now=sum(1 for r in mats if r.resolved_at is None),
        ack_p50_s=percentile(acks, 50),
        resolve_p50_s=percentile(done, 50),
        resolve_p90_s=percentile(done, 90),
        resolve_max_s=max(done) if done else None,
    )


UNKNOWN = "?"
"""Shown for a fact the log does not hold (an andon row written before 0006 and not backfilled)."""


@dataclass(frozen=True)
class AndonLogEvent:
    """One card-log row of an andon, as the reader needs it: its columns, never its detail text."""

    andon_id: str
    event: str
    occurred_at: datetime
    kind: str | None = None
    reason: str | None = None
    station: str | None = None
    loop_id: str | None = None
    """The loop of the card a material andon is about."""
    downtime_s: float | None = None
    """On the resolve row of a STOP."""
    elapsed_s: float | None = None
    """On acknowledge, resolve and cancel rows: seconds since the raise on the elapsed anchor (0012)."""


def records_from_log(events: Iterable[AndonLogEvent]) -> list[AndonRecord]:
    """Fold andon log rows (any order) into one record per andon; andons without a raise row are
    skipped (the window started after the raise).

    Event names: andon_raised, andon_acknowledged, andon_resolved, andon_cancelled, andon_escalated.
    Kind, reason, station and loop are taken from the raise row, or from the first later row that
    has them.
    """
    by_id: dict[str, list[AndonLogEvent]] = {}
    for e in events:
        by_id.setdefault(e.andon_id, []).append(e)
    records = []
    for andon_id, rows in by_id.items():
        rows.sort(key=lambda e: (e.occurred_at, e.event != "andon_raised"))
        raised = next((e for e in rows if e.event == "andon_raised"), None)
        if raised is None:
            continue

        def fact(name: str, rows: list[AndonLogEvent] = rows) -> str | None:
            return next((v for e in rows if (v := getattr(e, name)) is not None), None)

        ack = next((e for e in rows if e.event == "andon_acknowledged"), None)
        end = next((e for e in rows if e.event in ("andon_resolved", "andon_cancelled")), None)
        records.append(
            AndonRecord(
                id=andon_id,
                kind=fact("kind") or UNKNOWN,
                reason=fact("reason") or UNKNOWN,
                station=fact("station") or UNKNOWN,
                raised_at=raised.occurred_at,
                acknowledged_at=ack.occurred_at if ack else None,
                resolved_at=end.occurred_at if end else None,
                material=fact("loop_id"),
                cancelled=end is not None and end.event == "andon_cancelled",
                recorded_downtime_s=end.downtime_s if end else None,
                acknowledged_s=ack.elapsed_s if ack else None,
                ended_s=end.elapsed_s if end else None,
            )
        )
    records.sort(key=lambda r: r.raised_at)
    return records
