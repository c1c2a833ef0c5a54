"""The history simulator is a tool outside the product (issue 14): `python -m bench.history` fills a
new data dir with a history that passes `verify-log`, and refuses one that already has a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.history.cli import EXIT_USAGE, main
from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.terminal import Terminal


def test_the_tool_fills_a_new_data_dir_and_refuses_a_used_one(tmp_path: Path) -> None:
    data = tmp_path / "year"
    assert main(["--data-dir", str(data), "--days", "3", "--seed", "2"]) == 0
    terminal = Terminal.open(load_config(demo_config_path()), data)
    try:
        with terminal.db.reading() as session:
            rows = session.connection().exec_driver_sql("SELECT count(*) FROM card_log").scalar_one()
        assert rows > 100
        assert verify_log(terminal.db).ok
    finally:
        terminal.close()
    assert main(["--data-dir", str(data), "--days", "3"]) == EXIT_USAGE


def test_the_product_has_no_history_verb_and_runs_as_a_module(tmp_path: Path) -> None:
    from kanban_terminal.cli.log import COMMANDS

    assert "generate-history" not in COMMANDS
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "bench.history", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--data-dir" in out.stdout
