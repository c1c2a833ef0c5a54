"""Production days and shifts in the plant's local time, with its DST days.

The log keeps UTC instants; a plant counts days and shifts on its own clock. A shift is named by
(production day, number 1..n): it starts at its local start time and runs until the next shift
starts. The last shift of a day runs past midnight and belongs to the day it started on (a night
shift from 22:00 is one shift, not two halves on two dates).

DST: the buckets are cut at local start times, so on the spring-forward day in Europe/Berlin the
night shift 22:00-06:00 lasts 7 h and on the fall-back day 9 h, and each is still one shift. A start
time that does not exist on a spring-forward day (02:30 in Berlin) begins at the first instant after
the gap; a start that exists twice on a fall-back day begins at its first occurrence.

Nothing here reads a clock or the zone database: the zone comes in as a `tzinfo`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo


@dataclass(frozen=True)
class ShiftCalendar:
    """A plant's zone and its shift start times (local, earliest first)."""

    zone: tzinfo
    starts: tuple[time, ...]
    zone_name: str = "UTC"
    """The zone as configured, for people (`Europe/Berlin`)."""

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def day_of(self, at: datetime) -> date:
        """The local calendar date of `at`."""
        return self.local(at).date()

    def shift_of(self, at: datetime) -> tuple[date, int]:
        """(production day, shift number 1..n) of the instant `at`."""
        wall = self.local(at).replace(tzinfo=None)
        for i in range(len(self.starts) - 1, -1, -1):
            if wall.time() >= self.starts[i]:
                return wall.date(), i + 1
        # Before the first start: the previous day's last shift.
        return wall.date() - timedelta(days=1), len(self.starts)

    def shift_start(self, day: date, shift: int) -> datetime:
        """When shift `shift` of production `day` begins, as a UTC instant."""
        return self._instant(datetime.combine(day, self.starts[shift - 1]))

    def shift_end(self, day: date, shift: int) -> datetime:
        """When it ends: the next shift's start (the last shift ends at the next day's first)."""
        if shift < len(self.starts):
            return self.shift_start(day, shift + 1)
        return self.shift_start(day + timedelta(days=1), 1)

    def shift_hours(self, day: date, shift: int) -> float:
        """Real length of a shift in hours (7 or 9 for an 8 h shift across a DST change)."""
        return (self.shift_end(day, shift) - self.shift_start(day, shift)).total_seconds() / 3600

    def start_label(self, shift: int) -> str:
        return f"{self.starts[shift - 1]:%H:%M}"

    def _instant(self, wall: datetime) -> datetime:
        """The UTC instant of a local wall time: the first occurrence when it exists twice, the end of
        the gap when it does not exist (a wall time that round-trips differently is in a gap)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) == wall:
            return first
        # In the spring-forward gap: the two readings lie on both sides of the change; find the
        # change (the first instant after the gap) by bisection to the second.
        lo, hi = sorted((first, wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)))
        offset = lo.astimezone(self.zone).utcoffset()
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.zone).utcoffset() == offset:
                lo = mid
            else:
                hi = mid
        return hi.replace(microsecond=0)


def per_local_day(
    calendar: ShiftCalendar, times: Iterable[datetime], now: datetime, days: int
) -> tuple[int, ...]:
    """Counts per local day for the `days` days ending with `now`'s local day, oldest first."""
    today = calendar.day_of(now)
    counts = [0] * days
    for t in times:
        back = (today - calendar.day_of(t)).days
        if 0 <= back < days:
            counts[days - 1 - back] += 1
    return tuple(counts)


UTC_CALENDAR = ShiftCalendar(UTC, (time(6), time(14), time(22)), "UTC")
"""What metrics counted in before the site had a zone: UTC days, shifts at 06/14/22."""
