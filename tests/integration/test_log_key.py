"""The card-log key on real files: an old log keeps its plain rows and is keyed from its tail on,
and a terminal never starts on a key it cannot trust, nor without the key its log was keyed with."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kanban_terminal.cli import main
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.catalog import sync_catalog
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage import log_key
from kanban_terminal.storage.db import Database
from tests.support.mqtt_lines import make_config
from tests.support.terminals import START


def test_a_log_from_before_the_key_keeps_its_plain_rows_and_is_keyed_after_them(tmp_path: Path) -> None:
    config, _ = make_config(tmp_path, loops=1, cards=5, sensors=0)
    data = tmp_path / "data"
    old = Database(data / DB_FILENAME)  # what every terminal wrote before issue 17: no key
    sync_catalog(old, config, Terminal(config, old).card_loops, START)
    record_scan(Terminal(config, old, clock=lambda: START), "C00001", source="test", intent=Intent.EMPTY)
    plain_rows = old.last_log_id()
    old.close()

    terminal = Terminal.open(config, data, clock=lambda: START)
    try:
        record_scan(terminal, "C00002", source="test", intent=Intent.EMPTY)
        key = terminal.db.log_key
        assert key is not None and key.keyed_after_id == plain_rows
        assert verify_log(terminal.db).ok
    finally:
        terminal.close()
    key_file = data / log_key.KEY_FILENAME
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(key_file.read_text())["keyed_after_id"] == plain_rows
    with sqlite3.connect(data / DB_FILENAME) as conn:
        hashes = conn.execute("SELECT id, hash FROM card_log ORDER BY id").fetchall()
    assert len(hashes) > plain_rows
    assert not [i for i, h in hashes if i <= plain_rows and h.startswith("k1:")]
    assert not [i for i, h in hashes if i > plain_rows and not h.startswith("k1:")]


def keyed_data_dir(tmp_path: Path) -> tuple[Path, list[str]]:
    """A data dir whose first start made the key and keyed the catalog rows, and the `status`
    command line that runs on it (checked to run before the test breaks the key)."""
    config, config_path = make_config(tmp_path, loops=1, cards=5, sensors=0)
    data = tmp_path / "data"
    Terminal.open(config, data).close()
    args = ["status", "--config", str(config_path), "--data-dir", str(data)]
    assert main(args) == 0
    return data, args


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_others_may_read_is_refused_with_what_to_do(
    tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data, args = keyed_data_dir(tmp_path)
    (data / log_key.KEY_FILENAME).chmod(mode)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"mode {mode:04o}" in err and "chmod 600" in err


def test_a_keyed_log_whose_key_file_is_gone_does_not_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, args = keyed_data_dir(tmp_path)
    (data / log_key.KEY_FILENAME).unlink()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "keyed but its key file" in err and "missing" in err
    assert not (data / log_key.KEY_FILENAME).exists(), "no new key was made over the keyed log"


def test_a_configured_key_path_is_used(tmp_path: Path) -> None:
    config, config_path = make_config(tmp_path, loops=1, cards=5, sensors=0)
    elsewhere = tmp_path / "secrets" / "L1-T1.key"
    config = config.model_copy(
        update={"terminal": config.terminal.model_copy(update={"log_key_file": elsewhere})}
    )
    Terminal.open(config, tmp_path / "data").close()
    assert elsewhere.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "data" / log_key.KEY_FILENAME).exists()
