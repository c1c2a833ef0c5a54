"""Team-lead verbs as a script would use them: badge + PIN, the same lockout and log as the screen."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from kanban_terminal.config import demo_config_path

DEMO = str(demo_config_path())


def cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KANBAN_DATA_DIR": str(data), "KANBAN_CONFIG": DEMO}
    return subprocess.run(
        [sys.executable, "-m", "kanban_terminal", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def card_state(data: Path, card: str) -> str:
    db = sqlite3.connect(data / "terminal.db")
    try:
        return str(db.execute("SELECT state FROM card WHERE id = ?", (card,)).fetchone()[0])
    finally:
        db.close()


def test_suspend_and_resume_need_the_team_leads_pin(tmp_path: Path) -> None:
    assert cli(tmp_path, "enroll", "E2001", "--pin-stdin", stdin="2468\n").returncode == 0
    wrong = cli(tmp_path, "suspend-card", "B1001Z", "--badge", "E2001", "--pin-stdin", stdin="1111\n")
    assert wrong.returncode == 1 and "REFUSED" in wrong.stderr
    assert card_state(tmp_path, "B1001Z") == "in_use"
    operator = cli(tmp_path, "suspend-card", "B1001Z", "--badge", "E1001", "--pin-stdin", stdin="2468\n")
    assert operator.returncode == 1 and "no team-lead authority" in operator.stderr
    done = cli(
        tmp_path,
        "suspend-card",
        "B1001Z",
        "--badge",
        "E2001",
        "--pin-stdin",
        "--note",
        "bent",
        stdin="2468\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert card_state(tmp_path, "B1001Z") == "suspended"
    refused = cli(tmp_path, "scan", "B1001Z")
    assert refused.returncode == 1 and "out of circulation" in refused.stdout
    back = cli(tmp_path, "resume-card", "B1001Z", "--badge", "E2001", "--pin-stdin", stdin="2468\n")
    assert back.returncode == 0 and card_state(tmp_path, "B1001Z") == "in_use"


def test_raise_and_resolve_an_andon_from_a_shell(tmp_path: Path) -> None:
    assert cli(tmp_path, "enroll", "E2001", "--pin-stdin", stdin="2468\n").returncode == 0
    login = ("--badge", "E2001", "--pin-stdin")
    unknown = cli(tmp_path, "raise-andon", "stop", "ST20", "NOPE", *login, stdin="2468\n")
    assert unknown.returncode == 1 and "REFUSED" in unknown.stdout
    raised = cli(tmp_path, "raise-andon", "stop", "ST20", "qual", *login, stdin="2468\n")
    assert raised.returncode == 0, raised.stdout + raised.stderr
    andon_id = raised.stdout.splitlines()[-1].removeprefix("andon ")
    gone = cli(tmp_path, "resolve-andon", "no-such-andon", "--note", "x", *login, stdin="2468\n")
    assert gone.returncode == 1 and "no longer exists" in gone.stdout
    done = cli(tmp_path, "resolve-andon", andon_id, "--note", "gauge reset", *login, stdin="2468\n")
    assert done.returncode == 0, done.stdout + done.stderr
    db = sqlite3.connect(tmp_path / "terminal.db")
    try:
        rows = db.execute(
            "SELECT event, source, actor, andon_kind, andon_reason, station FROM card_log "
            "WHERE andon_id = ? ORDER BY id",
            (andon_id,),
        ).fetchall()
    finally:
        db.close()
    assert rows == [
        ("andon_raised", "cli", "E2001", "stop", "QUAL", "ST20"),
        ("andon_resolved", "cli", "E2001", "stop", "QUAL", "ST20"),
    ]


def test_a_typed_andon_id_is_logged_escaped(tmp_path: Path) -> None:
    assert cli(tmp_path, "enroll", "E2001", "--pin-stdin", stdin="2468\n").returncode == 0
    typed = "x\x1b[2Jy"
    gone = cli(
        tmp_path, "resolve-andon", typed, "--note", "x", "--badge", "E2001", "--pin-stdin", stdin="2468\n"
    )
    assert gone.returncode == 1
    db = sqlite3.connect(tmp_path / "terminal.db")
    try:
        (logged,) = db.execute("SELECT andon_id FROM card_log WHERE event = 'andon_refused'").fetchone()
    finally:
        db.close()
    assert "\x1b" not in logged and logged.startswith("x") and logged.endswith("y")


def auth_rows(data: Path) -> list[str]:
    db = sqlite3.connect(data / "terminal.db")
    try:
        return [e for (e,) in db.execute("SELECT event FROM card_log WHERE event LIKE 'auth%' ORDER BY id")]
    finally:
        db.close()


def test_a_missing_pin_is_refused_plainly_and_never_counts_toward_the_lockout(tmp_path: Path) -> None:
    """A script whose pipe is empty, or a cron job with no terminal (getpass reads stdin and meets its
    end), gives no PIN: a clear refusal, exit 1, and no failed attempt logged against the badge (the
    lockout would otherwise lock the team lead out after a few such runs)."""
    assert cli(tmp_path, "enroll", "E2001", "--pin-stdin", stdin="2468\n").returncode == 0
    before = auth_rows(tmp_path)
    for pin_args, stdin in ((("--pin-stdin",), ""), (("--pin-stdin",), "\n"), ((), "")):
        for _ in range(2):  # 6 runs in all: more than the lockout allows (5 wrong PINs)
            got = cli(
                tmp_path, "raise-andon", "stop", "ST20", "qual", "--badge", "E2001", *pin_args, stdin=stdin
            )
            assert got.returncode == 1, got.stdout + got.stderr
            assert "no PIN was given" in got.stderr and "unexpected error" not in got.stderr
    assert auth_rows(tmp_path) == before
    raised = cli(
        tmp_path, "raise-andon", "stop", "ST20", "qual", "--badge", "E2001", "--pin-stdin", stdin="2468\n"
    )
    assert raised.returncode == 0, raised.stdout + raised.stderr
    empty = cli(tmp_path, "enroll", "E3001", "--pin-stdin", stdin="")
    assert empty.returncode != 0 and "no PIN was given" in empty.stderr
