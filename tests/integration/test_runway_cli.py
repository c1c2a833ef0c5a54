"""Issue 18 headless: the `runway`, `quality-stop` and `confirm-stop` verbs as a shell runs them, and
`serve` raising the reserve-draw warning by itself (its runway job)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.runtime import RuntimeOptions
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from tests.integration.test_serve_jobs import serving
from tests.integration.test_team_lead_cli import cli
from tests.support.mqtt_lines import wait_for


def rows(data: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(f"file:{data / 'terminal.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_runway_verb_lists_every_loop_at_risk_first(tmp_path: Path) -> None:
    for card in ("B1001Z", "B1002X"):  # two of ST10-BOLT's three bins empty: one left for a 4 h refill
        assert cli(tmp_path, "scan", card).returncode == 0
    out = cli(tmp_path, "runway", "--json")
    assert out.returncode == 0, out.stderr
    loops = json.loads(out.stdout)["loops"]
    assert len(loops) == len(load_config(demo_config_path()).loops)
    assert loops[0]["loop"] == "ST10-BOLT" and loops[0]["at_risk"]
    assert (loops[0]["reserve_cards"], loops[0]["reserve_full"]) == (1, 1)
    assert not any(lp["at_risk"] for lp in loops[1:])
    text = cli(tmp_path, "runway")
    assert text.stdout.splitlines()[0].startswith("ST10-BOLT") and "AT RISK" in text.stdout.splitlines()[0]


def test_quality_stop_from_a_shell_needs_no_pin_and_a_team_lead_confirms(tmp_path: Path) -> None:
    assert cli(tmp_path, "enroll", "E2001", "--pin-stdin", stdin="2468\n").returncode == 0
    machine = cli(tmp_path, "quality-stop", "ST30", "MACH", "--actor", "E1001")
    assert machine.returncode == 1 and "team lead" in machine.stderr
    unknown = cli(tmp_path, "quality-stop", "ST99", "--actor", "E1001")
    assert unknown.returncode == 1 and "ST99" in unknown.stderr
    assert rows(tmp_path, "SELECT count(*) FROM andon") == [(0,)]
    stop = cli(tmp_path, "quality-stop", "ST30", "--actor", "E1001")
    assert stop.returncode == 0, stop.stderr
    andon_id = stop.stdout.split("andon ")[-1].strip()
    by_operator = cli(tmp_path, "confirm-stop", andon_id, "--badge", "E1001", "--pin-stdin", stdin="2468\n")
    assert by_operator.returncode == 1
    confirmed = cli(tmp_path, "confirm-stop", andon_id, "--badge", "E2001", "--pin-stdin", stdin="2468\n")
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert rows(tmp_path, f"SELECT state, raised_by, acknowledged_by FROM andon WHERE id = '{andon_id}'") == [
        ("acknowledged", "E1001", "E2001")
    ]


def test_serve_raises_the_reserve_warning_by_itself(tmp_path: Path) -> None:
    config = load_config(demo_config_path())
    terminal = Terminal.open(config, tmp_path)
    drawn = record_scan(terminal, "R10016", source="keyboard")  # a shell `scan` before serve starts
    terminal.close()
    assert drawn.accepted
    with serving(config, tmp_path, options=RuntimeOptions()):
        wait_for(
            lambda: rows(tmp_path, "SELECT count(*) FROM andon WHERE card_id = 'R10016'") == [(1,)],
            what="the reserve-draw material call raised by serve's runway job",
        )
    [(reason, kind, request)] = rows(tmp_path, "SELECT reason, kind, request_id FROM andon")
    assert (reason, kind, request) == ("MAT", "call", drawn.request_id)
