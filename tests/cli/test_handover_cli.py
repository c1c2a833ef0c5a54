"""The shift handover through the CLI door (issue floor80: `take-handover` had no test, and `handover`
was checked for its exit code only). A real SQLite file; `handover` through main(), `take-handover`
as a subprocess with the PIN on a real stdin pipe, as a script on the line PC would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services import andon as svc
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from tests.support.andon import OPERATOR, PIN, TEAM_LEAD, demo_config, enrolled

COMMON = ["--config", str(demo_config_path())]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A shift with an open help call at ST20 and a red card drawn, on the wall clock (the CLI's)."""
    terminal = enrolled(Terminal.open(demo_config(), tmp_path))
    try:
        assert svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="cli").ok
        assert record_scan(terminal, "R10016", source="keyboard").accepted
    finally:
        terminal.close()
    return tmp_path


def handover(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["handover", *COMMON, "--data-dir", str(data_dir)])
    return code, capsys.readouterr().out.splitlines()


def take_over(data_dir: Path, badge: str, pin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kanban_terminal", "take-handover", "--badge", badge, "--pin-stdin",
         *COMMON, "--data-dir", str(data_dir)],
        input=pin + "\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, "KANBAN_MQTT_URL": ""},
    )  # fmt: skip


def taken_rows(data_dir: Path) -> list[CardLogRow]:
    terminal = Terminal.open(demo_config(), data_dir)
    try:
        with terminal.db.reading() as s:
            query = select(CardLogRow).where(col(CardLogRow.event) == "handover_acknowledged")
            return list(s.exec(query).all())
    finally:
        terminal.close()


def test_the_sheet_says_what_is_open_and_the_incoming_lead_takes_it_over_from_a_shell(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, sheet = handover(data_dir, capsys)
    assert code == 3  # due: not taken over yet
    assert sheet[0].startswith("Handover, shift ")
    assert "Open andons (1):" in sheet
    assert any(line.startswith("  CALL ST20 Quality problem since ") for line in sheet), sheet
    assert "Reserve draws (24 h) (1):" in sheet
    assert any(line.startswith("  R10016 (ST10-BOLT) at ") for line in sheet), sheet
    assert "Suspended cards: none" in sheet and "Lost cards: none" in sheet
    assert sheet[-1] == "Not taken over yet: `take-handover --badge BADGE`."
    assert all(len(line) <= 80 for line in sheet), [line for line in sheet if len(line) > 80]

    refused = take_over(data_dir, OPERATOR, PIN)  # an operator's badge does not take a shift over
    assert refused.returncode == 1 and refused.stderr.startswith("REFUSED: "), refused.stdout + refused.stderr
    wrong = take_over(data_dir, TEAM_LEAD, "0000")
    assert wrong.returncode == 1 and wrong.stderr.startswith("REFUSED: "), wrong.stdout + wrong.stderr
    assert taken_rows(data_dir) == []  # neither wrote a handover row

    done = take_over(data_dir, TEAM_LEAD, PIN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("DONE: ") and f"{TEAM_LEAD} took over shift " in done.stdout
    [row] = taken_rows(data_dir)
    assert (row.actor, row.source) == (TEAM_LEAD, "cli")
    assert "1 open andons" in row.detail and "1 reserve draws" in row.detail

    code, sheet = handover(data_dir, capsys)
    assert code == 0 and sheet[-1] == f"Taken over by {TEAM_LEAD}."
    again = take_over(data_dir, TEAM_LEAD, PIN)  # once a shift
    assert again.returncode == 1 and "already took over" in again.stdout, again.stdout
    assert len(taken_rows(data_dir)) == 1
