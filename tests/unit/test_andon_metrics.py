"""Andon Pareto, per-shift downtime and material response time on hand-computed records."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from kanban_terminal.domain.andon_metrics import (
    AndonLogEvent,
    AndonRecord,
    material_response,
    pareto,
    per_period,
    records_from_log,
)
from kanban_terminal.domain.shifts import UTC_CALENDAR


def at(hh: int, mm: int = 0, day: int = 3) -> datetime:
    return datetime(2026, 3, day, hh, mm, tzinfo=UTC)


RECORDS = [
    AndonRecord("a1", "stop", "MACH", "ST10", at(8), at(8, 1), at(8, 30)),  # 30 min down
    AndonRecord("a2", "stop", "MAT", "ST20", at(9), at(9, 2), at(9, 10), material="ST20-PLATE"),  # 10
    AndonRecord("a3", "call", "QUAL", "ST10", at(10), None, at(10, 20)),  # a call: no downtime
    AndonRecord("a4", "stop", "MACH", "ST20", at(15), at(15, 5), at(15, 20)),  # 20, late shift
    AndonRecord("a5", "stop", "SAFE", "ST10", at(11), None, at(11, 1), cancelled=True),  # ignored
]
NOW = at(16)


def test_pareto_by_reason_worst_first() -> None:
    rows = pareto(RECORDS, "reason", NOW)
    assert [(r.key, r.count, r.downtime_s) for r in rows] == [
        ("MACH", 2, 3000),
        ("MAT", 1, 600),
        ("QUAL", 1, 0),
    ]
    assert rows[0].share == 3000 / 3600 and rows[-1].cumulative == 1.0


def test_pareto_by_station_ties_break_by_name() -> None:
    rows = pareto(RECORDS, "station", NOW)
    assert [(r.key, r.count, r.downtime_s) for r in rows] == [("ST10", 2, 1800), ("ST20", 2, 1800)]


def test_open_stop_counts_until_now() -> None:
    open_stop = AndonRecord("a6", "stop", "MACH", "ST30", at(15, 30))
    assert pareto([open_stop], "station", NOW)[0].downtime_s == 1800


def test_per_shift_and_per_day() -> None:
    shifts = per_period(RECORDS, NOW, UTC_CALENDAR, by_shift=True)
    assert [(p.day, p.shift, p.count, p.downtime_s) for p in shifts] == [
        (date(2026, 3, 3), 1, 3, 2400),
        (date(2026, 3, 3), 2, 1, 1200),
    ]
    days = per_period(RECORDS, NOW, UTC_CALENDAR)
    assert [(p.day, p.count, p.downtime_s) for p in days] == [(date(2026, 3, 3), 4, 3600)]
    # A night-shift andon after midnight belongs to the day its shift started.
    assert UTC_CALENDAR.shift_of(at(1, day=4)) == (date(2026, 3, 3), 3)


def test_material_response_time() -> None:
    m = material_response(RECORDS)
    assert (m.count, m.open_now, m.ack_p50_s, m.resolve_p50_s, m.resolve_max_s) == (1, 0, 120, 600, 600)


def test_records_are_folded_from_card_log_columns() -> None:
    stop = {"kind": "stop", "reason": "MACH", "station": "ST10"}
    mat = {"kind": "stop", "reason": "MAT", "station": "ST20"}
    events = [
        AndonLogEvent("A1", "andon_resolved", at(8, 30), **stop, downtime_s=1800.0),
        AndonLogEvent("A1", "andon_raised", at(8), **stop),
        AndonLogEvent("A1", "andon_escalated", at(8, 5), **stop),
        AndonLogEvent("A1", "andon_acknowledged", at(8, 6), **stop),
        AndonLogEvent("A2", "andon_raised", at(9), **mat, loop_id="ST20-PLATE"),
        AndonLogEvent("A2", "andon_cancelled", at(9, 1), **mat, loop_id="ST20-PLATE"),
        AndonLogEvent("A3", "andon_resolved", at(7)),  # raised before the window: skipped
        AndonLogEvent("A4", "andon_raised", at(10)),  # logged before 0006, not backfilled: unknown facts
    ]
    a1, a2, a4 = records_from_log(events)
    assert a1 == AndonRecord(
        "A1", "stop", "MACH", "ST10", at(8), at(8, 6), at(8, 30), recorded_downtime_s=1800.0
    )
    assert a2.cancelled and a2.material == "ST20-PLATE" and a2.is_material
    assert (a4.kind, a4.reason, a4.station, a4.downtime_s(at(11))) == ("?", "?", "?", 0.0)


def test_recorded_downtime_wins_over_the_timestamps() -> None:
    """The resolve row's downtime is the fact; the timestamps only count an andon still open."""
    record = AndonRecord("A1", "stop", "MACH", "ST10", at(8), resolved_at=at(8, 30), recorded_downtime_s=28.0)
    assert record.downtime_s(at(12)) == 28.0
    assert AndonRecord("A2", "stop", "MACH", "ST10", at(8)).downtime_s(at(8, 1)) == 60.0


def test_an_open_stop_counts_its_elapsed_time_when_the_caller_has_it() -> None:
    """Raised at 15:30, 4 minutes on the monotonic clock, the wall clock stepped +1 h: 240 s, not 64 min.
    A call stops nothing and a cancelled stop counts for nothing, elapsed time or not."""
    stepped_now = at(16, 34)
    open_stop = AndonRecord("a7", "stop", "MACH", "ST30", at(15, 30), running_s=240.0)
    assert open_stop.downtime_s(stepped_now) == 240.0
    assert AndonRecord("a7", "stop", "MACH", "ST30", at(15, 30)).downtime_s(stepped_now) == 3840.0
    assert AndonRecord("a8", "call", "QUAL", "ST30", at(15, 30), running_s=240.0).downtime_s(NOW) == 0.0
    cancelled = AndonRecord(
        "a9", "stop", "SAFE", "ST30", at(15, 30), None, at(15, 31), cancelled=True, running_s=9.0
    )
    assert cancelled.downtime_s(NOW) == 0.0


def test_response_times_are_the_recorded_elapsed_figures_else_the_wall_difference() -> None:
    """A material call raised 09:00, the wall clock stepped +1 h two minutes later: the acknowledge is
    stored at 10:02 and the resolve at 10:04, but their rows recorded 120 s and 240 s since the raise
    (`elapsed_s`). Those are the response; a log without them (no anchor, before 0012) keeps the
    wall difference, and a step back never makes a response negative."""
    mat: dict[str, Any] = {"kind": "call", "reason": "MAT", "station": "ST20", "loop_id": "ST20-PLATE"}
    events = [
        AndonLogEvent("A1", "andon_raised", at(9), **mat),
        AndonLogEvent("A1", "andon_acknowledged", at(10, 2), **mat, elapsed_s=120.0),
        AndonLogEvent("A1", "andon_resolved", at(10, 4), **mat, elapsed_s=240.0),
        AndonLogEvent("A2", "andon_raised", at(11), **mat),
        AndonLogEvent("A2", "andon_acknowledged", at(12, 2), **mat),
        AndonLogEvent("A2", "andon_resolved", at(12, 4), **mat),
    ]
    timed, untimed = records_from_log(events)
    assert (timed.acknowledged_s, timed.ended_s) == (120.0, 240.0)
    assert (timed.to_acknowledge_s(), timed.to_end_s()) == (120.0, 240.0)
    assert (untimed.to_acknowledge_s(), untimed.to_end_s()) == (3720.0, 3840.0)
    m = material_response([timed])
    assert (m.ack_p50_s, m.resolve_p50_s, m.resolve_max_s) == (120.0, 240.0, 240.0)
    stepped_back = AndonRecord("A3", "call", "MAT", "ST20", at(9), at(8, 2), at(8, 4))
    assert (stepped_back.to_acknowledge_s(), stepped_back.to_end_s()) == (0.0, 0.0)
    open_call = AndonRecord("A4", "call", "MAT", "ST20", at(9))
    assert (open_call.to_acknowledge_s(), open_call.to_end_s()) == (None, None)
