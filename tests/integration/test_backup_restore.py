"""Backup while scans stream in, restore only when nobody has the data dir open, log verifies after."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal import cli
from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.services.instance_lock import DataDirBusy
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import DB_FILENAME, Terminal
from kanban_terminal.storage import backup as files
from kanban_terminal.storage import log_key

CARDS = ("B1001Z", "B1101T", "B2001L", "B2101D", "B3201Q", "B4001Q", "B4101I", "B1002X")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(minutes=61)  # past debounce and early-delivery windows
            return self.now


@dataclass
class ScanStream:
    """Scans recorded on a thread until stopped; `committed` counts scans whose transaction returned."""

    terminal: Terminal
    committed: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        try:
            n = 0
            while not self.stop.is_set():
                record_scan(self.terminal, CARDS[n % len(CARDS)], source="cli", confirmed=True)
                n += 1
                with self.changed:
                    self.committed = n
                    self.changed.notify_all()
        except BaseException as exc:  # reported by the test, not lost on the thread
            self.error = exc
            with self.changed:
                self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.committed >= count or self.error, timeout=30)
        assert self.error is None, self.error


def _key(data_dir: Path) -> log_key.LogKey | None:
    """The terminal's card-log key: its rows after the key was made are keyed (HMAC) with it."""
    return log_key.load(data_dir / log_key.KEY_FILENAME)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def stream(data_dir: Path) -> Iterator[ScanStream]:
    terminal = Terminal.open(load_config(demo_config_path()), data_dir, clock=FakeClock())
    s = ScanStream(terminal)
    thread = threading.Thread(target=s.run, name="scan-stream")
    thread.start()
    yield s
    s.stop.set()
    thread.join()
    terminal.close()
    assert s.error is None, s.error


def _log_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM card_log")}
    finally:
        conn.close()


def test_backup_while_scans_stream_is_sound_and_holds_every_row_committed_before_it(
    stream: ScanStream, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One page per step, and a writer that must commit during the copy: the copy is really concurrent.
    monkeypatch.setattr(files, "STEP_PAGES", 1)
    stream.wait_for(20)
    committed_before = _log_ids(data_dir / DB_FILENAME)
    steps: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if not steps:
            stream.wait_for(stream.committed + 5)
        steps.append((done, total))

    dest = tmp_path / "copies" / "live.db"
    pages = files.copy_database(data_dir / DB_FILENAME, dest, progress=progress)
    stream.wait_for(stream.committed + 1)

    assert pages > 1 and len(steps) == pages and steps[-1] == (pages, pages)
    assert files.integrity_problems(dest) == []
    assert committed_before <= _log_ids(dest)
    assert files.chain_report(dest, _key(data_dir)).ok
    assert dest.stat().st_mode & 0o777 == 0o600
    assert not list(dest.parent.glob(".*partial*"))


def test_backup_cli_during_scans(stream: ScanStream, data_dir: Path, tmp_path: Path) -> None:
    stream.wait_for(10)
    committed_before = _log_ids(data_dir / DB_FILENAME)
    dest = tmp_path / "nightly.db"

    assert cli.main(["backup", str(dest), "--data-dir", str(data_dir)]) == cli.EXIT_OK

    assert files.integrity_problems(dest) == [] and committed_before <= _log_ids(dest)


def _args(data_dir: Path) -> list[str]:
    return ["--config", str(demo_config_path()), "--data-dir", str(data_dir)]


def test_restore_is_refused_while_a_terminal_runs_and_scan_still_works_beside_it(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["scan", "B1001Z", *_args(data_dir)]) == cli.EXIT_OK
    backup = tmp_path / "b.db"
    assert cli.main(["backup", str(backup), "--data-dir", str(data_dir)]) == cli.EXIT_OK
    running = Terminal.open(load_config(demo_config_path()), data_dir, long_running=True)
    try:
        assert cli.main(["scan", "B1101T", *_args(data_dir)]) == cli.EXIT_OK  # a short verb is not blocked
        with pytest.raises(DataDirBusy, match="already running"):
            Terminal.open(load_config(demo_config_path()), data_dir, long_running=True)
        capsys.readouterr()
        before = (data_dir / DB_FILENAME).stat().st_mtime_ns

        assert cli.main(["restore", str(backup), "--data-dir", str(data_dir)]) == cli.EXIT_FAILED

        err = capsys.readouterr().err
        assert "running" in err and f"pid {os.getpid()}" in err and "stop it first" in err
        assert (data_dir / DB_FILENAME).stat().st_mtime_ns == before
    finally:
        running.close()


def test_restore_is_refused_while_a_short_command_has_the_data_dir_open(
    data_dir: Path, tmp_path: Path
) -> None:
    Terminal.open(load_config(demo_config_path()), data_dir).close()
    backup = tmp_path / "b.db"
    files.copy_database(data_dir / DB_FILENAME, backup)
    short = Terminal.open(load_config(demo_config_path()), data_dir)
    try:
        with pytest.raises(DataDirBusy, match="a command is using it"):
            from kanban_terminal.services.maintenance import restore_terminal

            restore_terminal(data_dir, backup)
    finally:
        short.close()


def test_restore_after_stop_brings_back_the_backup_and_the_log_verifies(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["scan", "B1001Z", *_args(data_dir)]) == cli.EXIT_OK
    backup = tmp_path / "b.db"
    assert cli.main(["backup", str(backup), "--data-dir", str(data_dir)]) == cli.EXIT_OK
    in_backup = _log_ids(backup)
    assert cli.main(["scan", "B1101T", *_args(data_dir)]) == cli.EXIT_OK  # after the backup: lost on restore
    assert _log_ids(data_dir / DB_FILENAME) > in_backup
    capsys.readouterr()

    assert cli.main(["restore", str(backup), "--data-dir", str(data_dir)]) == cli.EXIT_OK

    out = capsys.readouterr().out
    assert "card log verified" in out and "replaced-by-restore-" in out
    assert _log_ids(data_dir / DB_FILENAME) == in_backup
    assert files.chain_report(data_dir / DB_FILENAME, _key(data_dir)).ok
    saved = next((data_dir / "backups").glob("replaced-by-restore-*.db"))
    assert _log_ids(saved) > in_backup
    assert (data_dir / DB_FILENAME).stat().st_mode & 0o777 == 0o600
    # The terminal opens the restored file and carries on.
    assert cli.main(["scan", "B2001L", *_args(data_dir)]) == cli.EXIT_OK
    assert files.chain_report(data_dir / DB_FILENAME, _key(data_dir)).ok


@pytest.mark.parametrize("damage", ["garbage", "newer_schema", "broken_chain"])
def test_restore_refuses_a_bad_backup_and_changes_nothing(
    data_dir: Path, tmp_path: Path, damage: str
) -> None:
    assert cli.main(["scan", "B1001Z", *_args(data_dir)]) == cli.EXIT_OK
    backup = tmp_path / "b.db"
    files.copy_database(data_dir / DB_FILENAME, backup)
    if damage == "garbage":
        backup.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    else:
        conn = sqlite3.connect(backup)
        if damage == "newer_schema":
            conn.execute("UPDATE alembic_version SET version_num = 'f00dface0042'")
        else:  # an edit behind the log's back: drop the append-only trigger, then change history
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute("UPDATE card_log SET detail = 'edited' WHERE id = 3")
        conn.commit()
        conn.close()
    before = _log_ids(data_dir / DB_FILENAME)

    assert cli.main(["restore", str(backup), "--data-dir", str(data_dir)]) == cli.EXIT_FAILED

    assert _log_ids(data_dir / DB_FILENAME) == before
    assert files.chain_report(data_dir / DB_FILENAME, _key(data_dir)).ok


def test_backup_onto_the_live_database_is_refused(data_dir: Path) -> None:
    assert cli.main(["scan", "B1001Z", *_args(data_dir)]) == cli.EXIT_OK
    before = _log_ids(data_dir / DB_FILENAME)
    for target in (data_dir / DB_FILENAME, data_dir / f"{DB_FILENAME}-wal"):
        assert cli.main(["backup", str(target), "--data-dir", str(data_dir)]) == cli.EXIT_FAILED
    assert _log_ids(data_dir / DB_FILENAME) == before


def test_a_killed_terminal_leaves_no_lock_behind(data_dir: Path, tmp_path: Path) -> None:
    """flock, not a pid file: SIGKILL drops the lock with the process, so restore is not blocked forever."""
    import signal
    import subprocess
    import sys

    Terminal.open(load_config(demo_config_path()), data_dir).close()
    backup = tmp_path / "b.db"
    files.copy_database(data_dir / DB_FILENAME, backup)
    code = (
        "import sys; from pathlib import Path\n"
        "from kanban_terminal.config import demo_config_path, load_config\n"
        "from kanban_terminal.services.terminal import Terminal\n"
        f"t = Terminal.open(load_config(demo_config_path()), Path({str(data_dir)!r}), long_running=True)\n"
        "print('ready', flush=True); sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        from kanban_terminal.services.maintenance import restore_terminal

        with pytest.raises(DataDirBusy, match=f"pid {proc.pid}"):
            restore_terminal(data_dir, backup)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()
    assert (data_dir / "running.lock").exists()  # the stale file stays; its lock does not
    assert restore_terminal(data_dir, backup).chain.ok
