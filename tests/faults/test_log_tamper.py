"""Tampering with the card log from outside, as someone holding the database file would (issue 17).

Each case drops the append-only triggers, changes a copy of a real terminal's database, and runs
`kanban-terminal verify-log` on it, as maintenance would: the damage must be detected, the first bad
row named, and the exit code non-zero. Anchors come from `backup` (the `.anchor.json` beside each
backup); the MQTT route to the upstream peer's store is tests/integration/test_log_anchors.py.

What each mode cannot see is asserted too (a cut tail without anchors; a chain recomputed with the
key without anchors), because docs/RELIABILITY.md promises exactly that and no more.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.cli import main
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import log_key
from kanban_terminal.storage.card_log import HASHED_FIELDS, chain_hash
from tests.support.mqtt_lines import make_config
from tests.support.terminals import Clock


class Line:
    """A terminal's data dir with a history of scans and two backups (and their anchors) on the way."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.config, self.config_path = make_config(tmp, loops=4, cards=25, sensors=0)
        self.data = tmp / "data"
        clock = Clock()
        terminal = Terminal.open(self.config, self.data, clock=clock)
        try:
            cards = [c for lp in self.config.loops for c in lp.card_id_list()]
            for card in cards[:30]:
                clock.advance(minutes=1)
                record_scan(terminal, card, source="test", intent=Intent.EMPTY)
            self.early = self.backup("early")
            for card in cards[30:70]:
                clock.advance(minutes=1)
                record_scan(terminal, card, source="test", intent=Intent.EMPTY)
        finally:
            terminal.close()
        self.late = self.backup("late")
        self.last = self.rows("SELECT max(id) FROM card_log")[0][0]
        self.early_row = json.loads(self.anchor(self.early).read_text())["row"]

    def backup(self, name: str) -> Path:
        path = self.tmp / "backups" / f"{name}.db"
        args = ["backup", str(path), "--config", str(self.config_path), "--data-dir", str(self.data)]
        assert main(args) == 0
        return path

    @staticmethod
    def anchor(backup: Path) -> Path:
        return backup.with_name(backup.name + ".anchor.json")

    def rows(self, sql: str, db: Path | None = None) -> list[tuple[object, ...]]:
        with sqlite3.connect(db or self.data / "terminal.db") as conn:
            return conn.execute(sql).fetchall()

    def copy(self, name: str) -> Path:
        """A copy of the data dir (database and key file), to tamper with."""
        dest = self.tmp / name
        shutil.copytree(self.data, dest, ignore=shutil.ignore_patterns("*.lock", "backups"))
        return dest

    def verify(self, data: Path, *anchors: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        args = ["verify-log", "--config", str(self.config_path), "--data-dir", str(data)]
        for a in anchors:
            args += ["--anchors", str(self.anchor(a))]
        code = main(args)
        return code, capsys.readouterr().out


def tamper(db: Path, *statements: str) -> None:
    """What someone with the file does first: drop the append-only guard, then edit."""
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER card_log_no_update")
        conn.execute("DROP TRIGGER card_log_no_delete")
        for sql in statements:
            conn.execute(sql)


def recompute_from(db: Path, first: int, key: log_key.LogKey | None) -> None:
    """Recompute every hash from row `first` on, as a forger would: plain SHA-256 without the key,
    HMAC with it (a forger who also copied the key file)."""
    cols = ", ".join(("id", "occurred_at", "recorded_at", *HASHED_FIELDS, "backfilled", "hash"))
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {cols} FROM card_log ORDER BY id").fetchall()
        prev = "0" * 64
        for row in rows:
            if row[0] >= first:
                new = chain_hash(prev, row[1], row[2], row[3:-2], backfilled=bool(row[-2]), key=key)
                conn.execute("UPDATE card_log SET hash = ? WHERE id = ?", (new, row[0]))
                prev = new
            else:
                prev = row[-1]


@pytest.fixture
def line(tmp_path: Path) -> Line:
    return Line(tmp_path)


def test_the_untouched_log_verifies_against_its_anchors(
    line: Line, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = line.verify(line.data, line.early, line.late, capsys=capsys)
    assert code == 0, out
    assert f"rows 1 to {line.last} are as they were" in out
    assert "keyed (HMAC-SHA256" in out


@pytest.mark.parametrize("cut", [1, 50])
def test_a_cut_tail_is_named_by_the_anchor(line: Line, cut: int, capsys: pytest.CaptureFixture[str]) -> None:
    copy = line.copy(f"cut{cut}")
    tamper(copy / "terminal.db", f"DELETE FROM card_log WHERE id > {line.last - cut}")
    first_cut = line.last - cut + 1
    code, out = line.verify(copy, line.early, line.late, capsys=capsys)
    assert code == 1, out
    assert f"BROKEN at row id {first_cut}:" in out and ("were cut" in out or "was cut" in out)
    # The chain alone cannot see it: every remaining row still follows from the one before.
    code, out = line.verify(copy, capsys=capsys)
    assert code == 0 and "a cut tail cannot be seen without them" in out


def test_a_chain_recomputed_without_the_key_fails_at_the_edited_row(
    line: Line, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = line.copy("forged")
    victim = line.last - 20
    tamper(copy / "terminal.db", f"UPDATE card_log SET detail = 'never happened' WHERE id = {victim}")
    recompute_from(copy / "terminal.db", victim, key=None)
    code, out = line.verify(copy, capsys=capsys)
    assert code == 1, out
    assert f"BROKEN at row id {victim}:" in out and "rewritten without the key" in out


def test_a_chain_recomputed_with_the_key_is_caught_by_anchors_only(
    line: Line, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = line.copy("forged-with-key")
    victim = line.last - 20
    assert victim > line.early_row
    tamper(copy / "terminal.db", f"UPDATE card_log SET detail = 'never happened' WHERE id = {victim}")
    recompute_from(copy / "terminal.db", victim, key=log_key.load(copy / log_key.KEY_FILENAME))
    code, out = line.verify(copy, capsys=capsys)
    assert code == 0, "with the key and no anchor, a forgery verifies: docs/RELIABILITY.md says so"
    code, out = line.verify(copy, line.early, line.late, capsys=capsys)
    assert code == 1, out
    # The early anchor still matches, the late one does not: the rewrite lies between them.
    assert f"BROKEN at row id {line.early_row + 1}:" in out
    assert f"row {line.last} no longer carries the hash" in out


def test_a_deleted_middle_row_names_the_row_after_it(line: Line, capsys: pytest.CaptureFixture[str]) -> None:
    copy = line.copy("hole")
    victim = line.last // 2
    tamper(copy / "terminal.db", f"DELETE FROM card_log WHERE id = {victim}")
    code, out = line.verify(copy, capsys=capsys)
    assert code == 1, out
    assert f"BROKEN at row id {victim + 1}:" in out


def test_a_database_of_another_terminal_fails_at_its_first_keyed_row(
    line: Line, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Terminal.open(line.config, tmp_path / "other", clock=Clock(Clock().now + timedelta(days=1)))
    other.close()  # the same line config, its own key: a plausible file from the PC next door
    copy = line.copy("swapped")
    shutil.copyfile(tmp_path / "other" / "terminal.db", copy / "terminal.db")
    code, out = line.verify(copy, capsys=capsys)
    assert code == 1, out
    assert "BROKEN at row id 1:" in out and "does not follow" in out


def test_an_older_copy_of_the_same_database_is_named_by_the_anchor(
    line: Line, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = line.copy("rolled-back")
    shutil.copyfile(line.early, copy / "terminal.db")  # yesterday's file put back in place
    code, out = line.verify(copy, line.late, capsys=capsys)
    assert code == 1, out
    assert f"BROKEN at row id {line.early_row + 1}:" in out and "were cut" in out


def test_a_key_file_others_can_read_stops_the_terminal(
    line: Line, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = line.data / log_key.KEY_FILENAME
    key_file.chmod(0o644)
    code = main(["status", "--config", str(line.config_path), "--data-dir", str(line.data)])
    err = capsys.readouterr().err
    assert code == 2
    assert "refusing to start" in err and "chmod 600" in err and str(key_file) in err
