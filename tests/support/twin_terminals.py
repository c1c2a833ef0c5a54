"""Two terminals that must store byte for byte the same: a fixed clock, ids and card-log key.

Used where one way of applying signals is compared with another (one by one against grouped, a
PUBACK mark inside a group against one after it): every table is dumped and compared, hashes too.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal.services.signals import BinSignal
from kanban_terminal.services.terminal import Terminal
from tests.support.mqtt_lines import make_config

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TABLES = {
    "card": "id",
    "replenishment_request": "id",
    "card_log": "id",
    "loop": "id",
    "inbound_signal": "device, boot, seq",
}
# One card-log key for both terminals: their logs must come out byte for byte the same, hashes too.
_KEY = '{"v": 1, "key": "' + "ab" * 32 + '", "keyed_after_id": 0, "created_at": "2026-01-01T00:00:00+00:00"}'


def open_twin(home: Path) -> Terminal:
    """A terminal of 2 loops x 3 cards and 6 sensors, with the fixed clock, ids and log key."""
    config, _ = make_config(home, loops=2, cards=3, sensors=6)
    (home / "data").mkdir(mode=0o700, exist_ok=True)
    os.close(os.open(home / "data" / "log-key.json", os.O_WRONLY | os.O_CREAT, 0o600))
    (home / "data" / "log-key.json").write_text(_KEY)
    ids = (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count(1))
    return Terminal.open(config, home / "data", clock=lambda: NOW, new_id=lambda: next(ids))


def dump(terminal: Terminal) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a signal writes, in key order."""
    con = sqlite3.connect(terminal.db.path)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY {by}").fetchall() for t, by in TABLES.items()}
    finally:
        con.close()


def bin_signals(steps: list[tuple[int, str]], first: int = 0) -> list[BinSignal]:
    """(sensor number, "empty" or "full") -> bin signals a minute apart, numbered from `first`."""
    return [
        BinSignal(f"s{n}", f"BS{device:05d}", "b1", n, kind, NOW + timedelta(minutes=n))
        for n, (device, kind) in enumerate(steps, start=first)
    ]
