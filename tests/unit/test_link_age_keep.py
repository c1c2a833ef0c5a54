"""`LinkAge(keep=n)` counts each of a few stamps on its own elapsed time, asked about in turn.

The status bar asks about the oldest request upstream has not answered, the health message about
the oldest the broker has not acknowledged: two stamps once the broker acknowledged the first. With
one record each question reset the other's count to the wall age, so a step bent both again.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from kanban_terminal.runtime.link_age import LinkAge
from kanban_terminal.services.health import build_health
from tests.support.andon import T0, FakeClock


def test_two_stamps_asked_in_turn_both_count_elapsed_time_across_a_step() -> None:
    clock = FakeClock(T0 + timedelta(seconds=30))
    ages = LinkAge(clock, clock.monotonic, keep=4)
    first, second = T0, T0 + timedelta(seconds=20)
    assert (ages.age_s("queued", first), ages.age_s("queued", second)) == (30, 10)
    clock.advance(minutes=1)
    clock.step_wall(hours=1)
    assert ages.age_s("queued", first) == 90  # the wall says 3,690
    assert ages.age_s("queued", second) == 70
    assert clock.now - ages.since("queued", first) == timedelta(seconds=90)


def test_one_record_by_default_as_the_link_state_had() -> None:
    clock = FakeClock(T0 + timedelta(seconds=30))
    ages = LinkAge(clock, clock.monotonic)
    ages.age_s("offline", T0)
    ages.age_s("connected", T0 + timedelta(seconds=5))
    clock.step_wall(hours=1)
    assert ages.age_s("offline", T0) == 3630  # forgotten: seen again, at the wall age


def test_the_health_message_reads_the_elapsed_age_it_is_given_and_keeps_the_stored_stamp() -> None:
    now = T0 + timedelta(hours=1, seconds=10)  # a request queued 10 s ago, after a +1 h step
    health = build_health(
        terminal_id="L1-T1", version="1", now=now, started_at=T0, link_state="connected", queued=1,
        oldest_queued_at=T0, disk_free_bytes=10**10, last_scan_at=None, last_error=None,
        oldest_age_s=10.6,
    )  # fmt: skip
    assert health["queue"] == {"requests": 1, "oldest_raised_at": "2026-03-02T06:00:00Z", "oldest_age_s": 10}
    assert health["state"] == "ok" and health["problems"] == []


class _Held(datetime):
    """A stamp whose first comparison, on the thread named "bar", waits (up to 2 s) for `other`: it
    holds that thread between reading the records and writing them back, where the race was."""

    other: threading.Event
    entered: threading.Event

    def __eq__(self, value: object) -> bool:
        if threading.current_thread().name == "bar" and not self.entered.is_set():
            self.entered.set()
            self.other.wait(2.0)  # with the lock the other thread cannot finish: this times out
        return datetime.__eq__(self, value)

    __hash__ = datetime.__hash__


def test_two_threads_asking_at_once_keep_both_records() -> None:
    """The bar's thread and the health thread ask at the same moment: each keeps its record. Without
    the lock the bar's thread, held between its read of the records and its write, wrote back what it
    had read and dropped the health thread's new record, seen again after a step at its wall age."""
    clock = FakeClock(T0 + timedelta(seconds=30))
    ages = LinkAge(clock, clock.monotonic, keep=4)
    mine, other, fresh = T0, T0 + timedelta(seconds=5), T0 + timedelta(seconds=20)
    ages.age_s("queued", mine)
    ages.age_s("queued", other)  # records: (other, mine): the bar's question will move `mine` first
    held = _Held(T0.year, T0.month, T0.day, T0.hour, T0.minute, T0.second, tzinfo=T0.tzinfo)
    held.other, held.entered = threading.Event(), threading.Event()
    bar = threading.Thread(target=ages.age_s, args=("queued", held), name="bar")
    bar.start()
    assert held.entered.wait(2.0)
    health = threading.Thread(target=lambda: (ages.age_s("queued", fresh), held.other.set()))
    health.start()
    bar.join()
    health.join()
    clock.advance(minutes=1)
    clock.step_wall(hours=1)
    assert ages.age_s("queued", fresh) == 70  # dropped, it read 3,670
