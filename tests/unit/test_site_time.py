"""The plant's time zone and shifts: days and shifts cut in local time, DST days included, and the
`[site]` keys checked like every other key. Before issue 17 every bucket was a UTC day or a shift at
06/14/22 UTC, whatever the plant's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kanban_terminal.config import ConfigError, demo_config_path, parse_config
from kanban_terminal.domain.andon_metrics import AndonRecord, per_period
from kanban_terminal.domain.metrics import per_day
from kanban_terminal.domain.shifts import ShiftCalendar

BERLIN = ShiftCalendar(ZoneInfo("Europe/Berlin"), (time(6), time(14), time(22)), "Europe/Berlin")
TOKYO = ShiftCalendar(ZoneInfo("Asia/Tokyo"), (time(7), time(15, 30), time(23)), "Asia/Tokyo")


def utc(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2026, 3, 28), 7.0),  # night shift into the spring-forward Sunday: 22:00 CET - 06:00 CEST
        (date(2026, 10, 24), 9.0),  # into the fall-back Sunday: 22:00 CEST - 06:00 CET
        (date(2026, 3, 29), 8.0),
    ],
)
def test_a_night_shift_across_a_dst_change_is_one_shift_of_7_or_9_hours(day: date, hours: float) -> None:
    assert BERLIN.shift_hours(day, 3) == hours
    start, end = BERLIN.shift_start(day, 3), BERLIN.shift_end(day, 3)
    # Every minute of it, the doubled hour of the fall-back included, is in that one shift.
    minutes = int((end - start).total_seconds() // 60)
    seen = {BERLIN.shift_of(start + timedelta(minutes=n)) for n in range(minutes)}
    assert seen == {(day, 3)}
    assert BERLIN.shift_of(end) == (day + timedelta(days=1), 1)


def test_a_start_time_in_the_spring_forward_gap_begins_when_the_gap_ends() -> None:
    early = ShiftCalendar(ZoneInfo("Europe/Berlin"), (time(2, 30), time(14, 30)), "Europe/Berlin")
    assert early.shift_start(date(2026, 3, 29), 1) == utc(2026, 3, 29, 1)  # 03:00 CEST
    assert early.shift_start(date(2026, 10, 25), 1) == utc(2026, 10, 25, 0, 30)  # first 02:30


def test_shifts_and_days_are_the_plants_not_utc() -> None:
    # 05:30 local in Berlin (04:30 UTC in summer) is still the previous day's night shift;
    # 06:10 local (04:10 UTC, winter 05:10) is the early shift. UTC hours would say otherwise.
    assert BERLIN.shift_of(utc(2026, 7, 1, 3, 30)) == (date(2026, 6, 30), 3)
    assert BERLIN.shift_of(utc(2026, 7, 1, 4, 10)) == (date(2026, 7, 1), 1)
    # Tokyo is UTC+9: 20:00 UTC on 3 March is 05:00 on 4 March, still the night shift of the 3rd;
    # 23:00 UTC is 08:00 on the 4th, the early shift, and a delivery then counts on the 4th.
    assert TOKYO.shift_of(utc(2026, 3, 3, 20)) == (date(2026, 3, 3), 3)
    assert TOKYO.shift_of(utc(2026, 3, 3, 23)) == (date(2026, 3, 4), 1)
    now = utc(2026, 3, 4, 12)
    assert per_day([utc(2026, 3, 3, 23), utc(2026, 3, 3, 14)], now, 3, TOKYO) == (0, 1, 1)


def test_andons_per_shift_on_the_fall_back_day() -> None:
    night = date(2026, 10, 24)
    start = BERLIN.shift_start(night, 3)
    stops = [
        AndonRecord(f"a{n}", "stop", "MACH", "ST10", start + timedelta(hours=h), None,
                    start + timedelta(hours=h, minutes=10))
        for n, h in enumerate((0.5, 3.5, 4.5, 8.5))  # 3.5 and 4.5: both 01:xx local, CEST and CET
    ]  # fmt: skip
    rows = per_period(stops, start + timedelta(days=1), BERLIN, by_shift=True)
    assert [(p.day, p.shift, p.count) for p in rows] == [(night, 3, 4)]


def _site(extra: str) -> str:
    text = demo_config_path().read_text()
    return text.replace("[site]\n", f"[site]\n{extra}\n", 1)


def test_site_zone_and_shifts_are_read_and_checked() -> None:
    cfg = parse_config(_site('timezone = "Europe/Berlin"\nshifts = ["05:30", "13:30", "21:30"]'), "x.toml")
    assert cfg.site.calendar.zone_name == "Europe/Berlin"
    assert cfg.site.calendar.shift_of(utc(2026, 1, 5, 4, 31)) == (date(2026, 1, 5), 1)  # 05:31 CET
    for bad, words in [
        ('timezone = "Europe/Berlln"', "unknown time zone 'Europe/Berlln'"),
        ('shifts = ["14:00", "06:00"]', "earliest first"),
        ('shifts = ["6:00"]', "is not HH:MM"),
        ("shifts = []", "at least one shift"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_config(_site(bad), "x.toml")
        assert words in str(err.value) and "site." in str(err.value), str(err.value)
