"""The card log for people: CSV export (and reading it back) and the log screen's filter line.

The queries (filters, keyset pages, the streaming cursor, per-card cycles) are in
storage/log_reads.py, re-exported here for the screens and the CLI. The export streams rows from one
cursor straight into the file: a year of history is about a million rows. It only reads; it never
writes the log.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta, tzinfo
from typing import IO, Any

from kanban_terminal.domain.shifts import UTC_CALENDAR, ShiftCalendar
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.log_reads import COLUMNS as COLUMNS
from kanban_terminal.storage.log_reads import CardCycle as CardCycle
from kanban_terminal.storage.log_reads import LogEntry as LogEntry
from kanban_terminal.storage.log_reads import LogFilter as LogFilter
from kanban_terminal.storage.log_reads import LogPage as LogPage
from kanban_terminal.storage.log_reads import card_cycles as card_cycles
from kanban_terminal.storage.log_reads import iter_entries as iter_entries
from kanban_terminal.storage.log_reads import parse_stored as parse_stored
from kanban_terminal.storage.log_reads import read_page as read_page

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection); such cells get a
# leading apostrophe, which `read_csv` removes again. A leading apostrophe itself is doubled likewise.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _cell(value: object) -> str:
    if value is None:
        return ""
    out = str(value)
    return "'" + out if out.startswith(_FORMULA_START) else out


LOCAL_COLUMNS = ("local_time", "production_day", "shift")
"""Derived columns after the log's own: `occurred_at` in the plant's zone, and the plant's production
day and shift number it falls in (`[site] timezone` and `shifts`). Not log fields: `read_csv` drops them."""


def _local_cells(calendar: ShiftCalendar, occurred_at: object) -> list[str]:
    at = parse_stored(str(occurred_at))
    day, shift = calendar.shift_of(at)
    return [calendar.local(at).isoformat(timespec="seconds"), day.isoformat(), str(shift)]


def write_csv(
    db: Database,
    flt: LogFilter,
    out: IO[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    calendar: ShiftCalendar = UTC_CALENDAR,
) -> int:
    """Stream the filtered log into `out` as CSV (header first); return the number of rows.

    After the log's columns come `LOCAL_COLUMNS`, computed with `calendar` (the plant's zone and
    shifts), so a spreadsheet can group by the plant's shifts without knowing its DST rules.

    `progress(rows_done, 0)` is called every 10,000 rows (the total is not counted first: that
    would read the whole filtered log twice).

    Text in the log was escaped when it was recorded (`domain.text.escape_external`), so no control
    character reaches the file; cells a spreadsheet would run as a formula get a leading apostrophe.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*COLUMNS, *LOCAL_COLUMNS))
    at = COLUMNS.index("occurred_at")
    count = 0
    for row in iter_entries(db, flt):
        writer.writerow([*(_cell(v) for v in row), *_local_cells(calendar, row[at])])
        count += 1
        if progress is not None and count % 10_000 == 0:
            progress(count, 0)
    if progress is not None:
        progress(count, count)
    return count


def read_csv(stream: IO[str]) -> Iterator[dict[str, str | None]]:
    """Read an export back (for checks and re-import tools): the inverse of `write_csv`.

    Empty cells come back as None only for nullable columns; `detail` stays an empty string.
    """
    nullable = {f.name for f in fields(LogEntry) if f.name not in ("detail", "source", "event", "hash")}
    for record in csv.DictReader(stream):
        row: dict[str, str | None] = {}
        for key, value in record.items():
            if key in LOCAL_COLUMNS:
                continue
            if value.startswith("'"):
                value = value[1:]
            row[key] = None if value == "" and key in nullable else value
        yield row


QUERY_KEYS = ("card", "part", "loop", "station", "event", "source", "actor", "since", "until")


class QueryError(ValueError):
    """A filter the screen cannot read; the message says which word and why."""


def parse_time(value: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """`2026-03-01`, `2026-03-01T06:00` (in the plant's `zone` unless a zone is given), or `7d` /
    `12h` / `30m` ago. The screen's filter line and `export --since/--until` both read times here."""
    units = {"d": 86400, "h": 3600, "m": 60}
    if value[:-1].isdigit() and value[-1:] in units:
        return now - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"'{value}' is not a time: use 2026-03-01, 2026-03-01T06:00 or 7d / 12h") from None
    return at if at.tzinfo else at.replace(tzinfo=zone)


def parse_query(query: str, now: datetime, zone: tzinfo = UTC) -> LogFilter:
    """The log screen's filter line: `key:value` words for the fields, anything else is free text.

    Keys: card part loop station event source actor since until (`event:` may repeat).
    Example: `loop:ST20-PLATE event:delivered since:7d late`.
    """
    values: dict[str, Any] = {}
    events: list[str] = []
    free: list[str] = []
    for word in query.split():
        key, sep, value = word.partition(":")
        key = key.lower()
        if not sep or key not in QUERY_KEYS or not value:
            free.append(word)
        elif key == "event":
            events += value.split(",")
        elif key in ("since", "until"):
            values[key] = parse_time(value, now, zone)
        else:
            values[key] = value
    return LogFilter(**values, events=tuple(events), text=" ".join(free) or None)
