"""The `[site]` section: the plant's id, its time zone and its shift start times.

The card log keeps UTC; people count days and shifts in the plant's local time. A plant at UTC+1
whose early shift starts at 06:00 local must not have it cut at 06:00 UTC, and on the two DST days a
year a shift is 7 h or 9 h long and still one shift. So metrics, the metrics screen and exports
bucket by `timezone` (an IANA zoneinfo name such as `Europe/Berlin`) and `shifts` (local start
times), through `domain/shifts.py`'s `ShiftCalendar`.

Kept out of config.py (near its 400-line limit); config.py re-exports `Site`. Imports no layer.
"""

from __future__ import annotations

import re
from datetime import time
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from kanban_terminal.domain.shifts import ShiftCalendar

SiteIdent = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
"""config.py's `Ident` (that module imports this one, so the pattern is repeated, not imported)."""
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SiteIdent
    """Plant or site id, used in MQTT topics."""
    name: str = ""
    """Human name of the site."""
    timezone: str = "UTC"
    """The plant's time zone, an IANA name (`Europe/Berlin`, `America/Chicago`, `Asia/Tokyo`): days
    and shifts in metrics, the metrics screen and exports are counted in it. The log stays in UTC."""
    shifts: tuple[str, ...] = ("06:00", "14:00", "22:00")
    """Local start times of the shifts (`HH:MM`, 24 h, earliest first). A shift runs until the next
    one starts; the last runs past midnight into the next day's first, and belongs to the day it
    started on. On a DST day a shift simply lasts an hour more or less."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin or UTC "
                "(`timedatectl list-timezones` lists them)"
            ) from None
        return value

    @field_validator("shifts")
    @classmethod
    def _shift_times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('give at least one shift start time, e.g. ["06:00"]')
        for text in value:
            if not _HHMM.match(text):
                raise ValueError(f"shift start {text!r} is not HH:MM (24 h, e.g. 06:00 or 22:30)")
        if list(value) != sorted(set(value)):
            raise ValueError("shift start times must be distinct and in order, earliest first")
        return value

    @property
    def calendar(self) -> ShiftCalendar:
        """Days and shifts of this plant, for the metrics and exports."""
        return calendar_of(self.timezone, self.shifts)


@lru_cache(maxsize=16)
def calendar_of(zone: str, shifts: tuple[str, ...]) -> ShiftCalendar:
    """The `ShiftCalendar` of a zone name and `HH:MM` starts (cached: not a property cache, which
    pydantic's `model_copy` would carry over to a copy with other settings)."""
    starts = tuple(time(int(s[:2]), int(s[3:])) for s in shifts)
    return ShiftCalendar(ZoneInfo(zone), starts, zone)
