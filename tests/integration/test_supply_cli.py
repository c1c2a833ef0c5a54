"""The headless doors of issues 17 and 18, as a script uses them: `scan --short/--damaged`, `reroute`
with badge + PIN, and `status` showing upstream's warnings and the route (CLI as a subprocess, real
SQLite file)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from tests.support.supply_lines import PIN, supply_config


def cli(config: Path, data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KANBAN_DATA_DIR": str(data), "KANBAN_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "kanban_terminal", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def q(data: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(data / "terminal.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_scan_short_records_the_delivery_and_its_shortfall_or_nothing(tmp_path: Path) -> None:
    _, config = supply_config(tmp_path)
    data = tmp_path / "data"
    assert cli(config, data, "scan", "C00001").returncode == 0
    rows_before = q(data, "SELECT count(*) FROM card_log")
    not_yet = cli(config, data, "scan", "C00002", "--short", "3")  # in use: this scan is no delivery
    assert not_yet.returncode == 1 and "nothing recorded" in not_yet.stdout
    assert q(data, "SELECT state FROM card WHERE id = 'C00002'") == [("in_use",)]
    assert q(data, "SELECT count(*) FROM card_log") == rows_before
    bad = cli(config, data, "scan", "C00001", "--short", "-2")
    assert bad.returncode == 2 and "negative" in bad.stderr
    too_many = cli(config, data, "scan", "C00001", "--short", "11", "--confirm")
    assert too_many.returncode == 1 and "Nothing recorded, not even the scan" in too_many.stdout
    assert q(data, "SELECT state FROM card WHERE id = 'C00001'") == [("queued",)]  # still waiting

    done = cli(config, data, "scan", "C00001", "--short", "3", "--damaged", "1", "--confirm")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 short" in done.stdout and "quality called" in done.stdout and "andon " in done.stdout
    assert q(data, "SELECT short_qty, damaged_qty FROM replenishment_request WHERE status = 'delivered'") == [
        (3, 1)
    ]
    assert q(data, "SELECT quantity FROM replenishment_request WHERE shortfall_of IS NOT NULL") == [(3,)]
    assert q(data, "SELECT kind, reason FROM andon") == [("call", "QUAL")]


def test_reroute_needs_the_pin_and_status_shows_the_route_and_the_warning(tmp_path: Path) -> None:
    cfg, config = supply_config(tmp_path)
    data = tmp_path / "data"
    assert cli(config, data, "enroll", "TL1", "--pin-stdin", stdin=f"{PIN}\n").returncode == 0
    assert cli(config, data, "scan", "C00001").returncode == 0
    (old,) = q(data, "SELECT id FROM replenishment_request")[0]
    wrong = cli(config, data, "reroute", "LP0", "--badge", "TL1", "--pin-stdin", stdin="1357\n")
    assert wrong.returncode == 1 and q(data, "SELECT source FROM replenishment_request") == [("SM1",)]

    # Upstream warns (what the inbound worker does with a `delayed` status off the broker).
    terminal = Terminal.open(cfg, data)
    try:
        eta = datetime.now(UTC) + timedelta(hours=3)
        applied = apply_upstream_status(
            terminal, UpstreamStatus("w1", old, "delayed", datetime.now(UTC), eta=eta, reason="fog")
        )
        assert applied.moved
    finally:
        terminal.close()
    shown = cli(config, data, "status")
    assert "DELAYED, ETA" in shown.stdout and "FOG" in shown.stdout, shown.stdout
    as_json = json.loads(cli(config, data, "status", "--json").stdout)
    (request,) = as_json["open_requests"]
    assert (request["trouble"], request["trouble_reason"], request["source"]) == ("delayed", "fog", "SM1")
    assert request["eta"] is not None

    done = cli(
        config, data, "reroute", "LP0", "--badge", "TL1", "--pin-stdin", "--note", "fog", stdin=f"{PIN}\n"
    )
    assert done.returncode == 0 and "now fed from SM2" in done.stdout, done.stdout + done.stderr
    assert f"request {old} cancelled" in done.stdout
    assert q(data, "SELECT status FROM replenishment_request WHERE id = ?", old) == [("rerouted",)]
    assert q(data, "SELECT count(*) FROM request_cancel WHERE request_id = ?", old) == [(1,)]
    after = cli(config, data, "status")
    assert "RE-ROUTED to SM2" in after.stdout
    loops = {lp["loop"]: lp for lp in json.loads(cli(config, data, "status", "--json").stdout)["loops"]}
    assert (loops["LP0"]["source"], loops["LP0"]["rerouted"]) == ("SM2", True)
    assert (loops["LP1"]["source"], loops["LP1"]["rerouted"]) == ("SM1", False)
    no_second = cli(config, data, "reroute", "LP1", "--badge", "TL1", "--pin-stdin", stdin=f"{PIN}\n")
    assert no_second.returncode == 1 and "second source" in no_second.stdout
