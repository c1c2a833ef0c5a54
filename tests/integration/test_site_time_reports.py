"""Metrics, the metrics screen's lines and exports count in the plant's zone and shifts (issue 17).

Before: shifts were fixed at 06/14/22 UTC and trends counted UTC days, so a Berlin plant's early
shift (06:00 local = 04:00 or 05:00 UTC) lost its first hour or two to the night shift; and
`export --since 7d` was refused ("invalid _when value") although the screen's filter takes `7d`.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal.config import demo_config_path, parse_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services.andon import raise_andon
from kanban_terminal.services.metrics_text import andon_lines, report_json
from kanban_terminal.services.reports import build_report
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal, utc_now
from tests.integration.conftest import Clock


def berlin_config(tmp_path: Path) -> Path:
    text = (
        demo_config_path()
        .read_text()
        .replace("[site]\n", '[site]\ntimezone = "Europe/Berlin"\nshifts = ["06:00", "14:00", "22:00"]\n', 1)
    )
    path = tmp_path / "berlin.toml"
    path.write_text(text)
    return path


def test_andon_shifts_are_cut_at_the_plants_local_shift_starts(tmp_path: Path) -> None:
    path = berlin_config(tmp_path)
    cfg = parse_config(path.read_text(), str(path))
    # 04:30 UTC in July is 06:30 in Berlin: the early shift (1), which UTC hours call the night shift.
    clock = Clock(datetime(2026, 7, 1, 4, 30, tzinfo=UTC))
    terminal = Terminal.open(cfg, tmp_path / "data", clock=clock)
    try:
        assert raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard").ok
        clock.advance(hours=1)
        report = build_report(terminal, days=7)
    finally:
        terminal.close()
    lines = andon_lines(report)
    assert "  shift 1 (from 06:00 Europe/Berlin): 0 s down over 1 shifts" in lines, lines
    assert not any("shift 3" in line for line in lines)
    data = report_json(report)
    assert data["timezone"] == "Europe/Berlin" and data["shift_starts"] == ["06:00", "14:00", "22:00"]
    assert data["andon_periods"] == [{"day": "2026-07-01", "shift": 1, "andons": 1, "downtime_s": 0.0}]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    return subprocess.run([sys.executable, "-m", "kanban_terminal", *args], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip


def test_export_takes_the_screens_time_words_and_writes_local_shift_columns(tmp_path: Path) -> None:
    path = berlin_config(tmp_path)
    cfg = parse_config(path.read_text(), str(path))
    data = tmp_path / "data"
    card = cfg.loops[0].card_id_list()[0]
    old = Terminal.open(cfg, data, clock=lambda: utc_now() - timedelta(days=10))
    assert record_scan(old, card, source="keyboard").accepted  # ten days ago
    old.close()
    recent = Terminal.open(cfg, data)
    other = cfg.loops[1].card_id_list()[0]
    assert record_scan(recent, other, source="keyboard").accepted  # now
    recent.close()
    out = tmp_path / "week.csv"
    done = cli("export", "--config", str(path), "--data-dir", str(data), "--since", "7d", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows and {r["card_id"] for r in rows if r["card_id"]} == {other}
    for r in rows:  # the plant's local time, production day and shift beside the UTC time
        at = datetime.fromisoformat(r["occurred_at"])
        local = datetime.fromisoformat(r["local_time"])
        assert local == at.replace(microsecond=0)
        assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
        day, shift = cfg.site.calendar.shift_of(at)
        assert (r["production_day"], r["shift"]) == (day.isoformat(), str(shift))
    bad = cli("export", "--config", str(path), "--data-dir", str(data), "--since", "7x", "--out", "-")
    assert bad.returncode == 2 and "'7x' is not a time" in bad.stderr and "Traceback" not in bad.stderr
