"""Each loop's bin-empty times over the runway window, kept between the runway job's passes (issue 19).

A line at the rate it was sized for logs every bin-empty of a shift in the window: bench/line_pc.py's
20,000-card line at 5 signals/s holds ~144,000 bin-empty rows in an 8-hour window, ~430,000 log
rows with the requests and deliveries. The full pass read them all every `check_seconds`, and a
pass over one loop its ~2,200 rows: with sqlite3 on such a file (454,000 log rows, the window
written as at 5/s), the whole window's read took 171 ms of CPU and 189 ms with the times parsed, a
loop's 0.64 ms; with a full pass every 30 s that alone is ~1.3 ms of CPU a signal. Kept here, a pass
reads only the log rows written since the one before (by id, storage/runway_rows.py) and drops in
memory what left the window (by time).

Exact: the window holds every bin-empty row whose time is at or after its start, whatever order the
rows were logged in (a buffered signal's older time, logged late, is put in its place). A start set
back (the clock stepped back) cannot be followed (what left was dropped): the caller starts a new
window, which reads the whole window once, as the first pass does.

Held as microseconds since 1970 in one `array` a loop (8 bytes a time: ~1.2 MB for 144,000,
against ~8 MB as `datetime`s). The rates need only how many the window holds, the first and the
last few (domain/runway.py `consumption_rate`): `empties_of` hands over those, with the count of
those left out between them.

Pure: no I/O, no clock; the rows and times come in as arguments.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _us(at: datetime) -> int:
    return (at - EPOCH) // _US


class EmptiesWindow:
    """Loop id -> its bin-empty times at or after `since` (red cards left out), in time order."""

    def __init__(self, since: datetime, reserve: Collection[str]):
        self.since = since
        self.reserve = frozenset(reserve)
        """The red cards whose empties are left out (the runway does not plan with the reserve)."""
        self.seen_id = -1
        """The highest card-log id taken in; -1: nothing read yet (the first read takes the window)."""
        self._times: dict[str, array[int]] = {}

    @property
    def loaded(self) -> bool:
        return self.seen_id >= 0

    def add(self, loop_id: str, card_id: str | None, at: datetime) -> None:
        """One bin-empty row; kept when its time is in the window and its card is not red."""
        if card_id in self.reserve or at < self.since:
            return
        t = _us(at)
        times = self._times.get(loop_id)
        if times is None:
            self._times[loop_id] = array("q", (t,))
        elif not times or times[-1] <= t:
            times.append(t)
        else:  # logged late with an older time (a buffered signal): in its place
            times.insert(bisect_right(times, t), t)

    def move_to(self, since: datetime) -> None:
        """The window now starts at `since` (not earlier than before): what left it is dropped."""
        if since < self.since:
            raise ValueError("a window cannot start earlier than it did: start a new one")
        cut = _us(since)
        for times in self._times.values():
            n = bisect_left(times, cut)
            if n:
                del times[:n]
        self.since = since

    def count(self, loop_id: str) -> int:
        """How many empties of the loop the window holds (tests, benches)."""
        return len(self._times.get(loop_id, ()))

    def empties_of(
        self, loop_id: str, since: datetime, now: datetime, recent: int
    ) -> tuple[tuple[datetime, ...], int]:
        """The loop's empties from `since` on (not earlier than the window's start) as the rates
        need them: the first, the last `recent` up to `now` and any after `now`; and how many of
        those up to `now` were left out. Those before `since` are not handed over (kept for a
        reader whose clock read came a little earlier: `move_to` is given a start before theirs)."""
        if since < self.since:
            raise ValueError("the window starts later than asked: start a new one")
        times = self._times.get(loop_id)
        if not times:
            return (), 0
        start = bisect_left(times, _us(since))
        upto = bisect_right(times, _us(now), start)
        if upto - start <= recent + 1:
            return tuple(EPOCH + t * _US for t in times[start:]), 0
        kept = [times[start], *times[upto - recent :]]
        return tuple(EPOCH + t * _US for t in kept), upto - start - 1 - recent
