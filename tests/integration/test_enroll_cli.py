"""`kanban-terminal enroll`: stores only a salted hash of the PIN, refuses operators and weak PINs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kanban_terminal import cli
from kanban_terminal.config import demo_config_path
from kanban_terminal.services import auth
from kanban_terminal.services.terminal import DB_FILENAME


def enroll(monkeypatch: pytest.MonkeyPatch, data_dir: Path, badge: str, pin: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(pin + "\n"))
    # The production cost (N=2^17, ~0.5 s) is tested once in the service tests; keep this one quick.
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)
    args = ["enroll", badge, "--pin-stdin", "--config", str(demo_config_path()), "--data-dir", str(data_dir)]
    return cli.main(args)


def test_enroll_stores_only_the_hash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Eight digits: a 4-digit PIN turns up by chance in the log's hex hashes in ~4 % of runs.
    pin = "73519468"
    assert enroll(monkeypatch, tmp_path, "e2001", pin) == cli.EXIT_OK
    # The commit may still sit in the WAL: look at every file SQLite wrote.
    data = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith(DB_FILENAME))
    assert b"scrypt$1024$8$1$" in data and pin.encode() not in data


@pytest.mark.parametrize(("badge", "pin"), [("E1001", "4711"), ("E2001", "1234"), ("NOBODY", "4711")])
def test_enroll_refuses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, badge: str, pin: str) -> None:
    assert enroll(monkeypatch, tmp_path, badge, pin) == cli.EXIT_REJECTED
