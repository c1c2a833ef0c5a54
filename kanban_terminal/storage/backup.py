"""Copying a live terminal database the one safe way: SQLite's online backup API.

Copying `terminal.db` with `cp` while the terminal runs is one of SQLite's documented ways to corrupt
it (the newest commits live in `-wal`; a copy taken mid-transaction is torn). The backup API copies
pages through SQLite's own locking. We hold one read transaction on the source for the whole copy: in
WAL mode that pins a snapshot, so writers keep committing (scans are never blocked) and the copy is
exactly the database as it was when the backup started. Without the pinned snapshot, a stepwise
backup restarts every time another connection writes, and under a steady stream of scans it might
never finish.

This module knows files and SQLite only; who may back up or restore when is decided by the callers
(cli/__init__.py, services/instance_lock.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from kanban_terminal.storage import anchors
from kanban_terminal.storage.card_log import ChainReport, verify_chain
from kanban_terminal.storage.log_key import LogKey
from kanban_terminal.storage.sqlite_file import BUSY_TIMEOUT_MS, alembic_config
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.storage.types import from_text

Progress = Callable[[int, int], None]
"""Called as progress(done_pages, total_pages) after each step."""

STEP_PAGES = 256
"""Pages per backup step (1 MiB at 4 KiB pages): small enough for a live progress bar."""

AUTO_BACKUPS_KEPT = 5
"""Automatic pre-migration backups kept per data dir; older ones are deleted."""

_AUTO_NAME = re.compile(r"^terminal-rev(?P<rev>[A-Za-z0-9_]+)-(?P<at>\d{8}T\d{6}\d{6}Z)\.db$")


_CHAIN_COLUMNS = frozenset(
    {"id", "occurred_at", "recorded_at", "event", "card_id", "loop_id", "from_state", "to_state",
     "request_id", "actor", "source", "detail", "andon_id", "andon_kind", "andon_reason", "station",
     "downtime_s", "elapsed_s", "backfilled", "hash"}
)  # fmt: skip


class BackupError(Exception):
    """A backup or restore could not be made or did not verify; the message says why."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def integrity_problems(path: Path) -> list[str]:
    """`PRAGMA integrity_check` on the file at `path`: an empty list when it is sound."""
    try:
        conn = _connect(path)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:  # "file is not a database" and friends
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def _make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents 0700 (`mkdir(parents=True)` makes the parents with
    the umask's default: 0777 under umask 000). A backup holds the whole card log and PIN hashes."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is masked by the umask; this is not


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def backup_file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a backup file, in one line; None when it can be opened.

    Checked before a restore takes the data dir, so a typo, a directory or a name longer than the file
    system allows reads as what it is instead of an unexpected error.
    """
    try:
        if path.is_dir():
            return f"{path} is a directory; give the backup file itself"
        with open(path, "rb"):
            return None
    except FileNotFoundError:
        return f"{path}: no such backup file"
    except OSError as exc:  # ENAMETOOLONG, ENOTDIR (a file used as a folder), EACCES, ELOOP ...
        return f"{path}: cannot open the backup file: {_os_reason(exc)}"


def backup_dest_problem(dest: Path) -> str | None:
    """Why no backup can be written at `dest`, in one line; None when it looks writable.

    The definite answer is the write itself (copy_database wraps its OSErrors); this catches the usual
    mistakes first with a message that says what to do.
    """
    try:
        if dest.name in ("", ".", "..") or dest.is_dir():
            return f"{dest} is a directory; give the backup's file name, e.g. {dest / 'terminal-backup.db'}"
        existing = next(p for p in dest.parents if p.exists())
        if not existing.is_dir():
            return f"{existing} is a file, so {dest} cannot be created"
    except OSError as exc:  # ENAMETOOLONG, ELOOP ...
        return f"cannot write the backup {dest}: {_os_reason(exc)}"
    return None


def copy_database(source: Path, dest: Path, *, progress: Progress | None = None, terminal: str = "") -> int:
    """Copy the database at `source` to `dest` (0600) through the online backup API.

    The copy is written to a temporary file beside `dest`, switched to a rollback journal (so it is one
    self-contained file) and checked with `integrity_check`; only then is it renamed over `dest`.
    Its card log's head goes beside it as `<dest>.anchor.json` (storage/anchors.py, for `terminal`):
    a later `verify-log --anchors` against it proves the live log still holds every row the backup had.

    Args:
        source: a live database, possibly being written by other processes.
        dest: where the copy goes; replaced atomically.
        progress: called with (done, total) pages after each step.

    Returns:
        The number of pages copied.

    Raises:
        BackupError: the source cannot be read, `dest` cannot be written, or the copy does not pass
            integrity_check.
    """
    if not source.exists():
        raise BackupError(f"{source}: no database there")
    problem = backup_dest_problem(dest)
    if problem is not None:
        raise BackupError(problem)
    live = {source.resolve(), *(Path(f"{source}{s}").resolve() for s in ("-wal", "-shm", "-journal"))}
    if dest.resolve() in live:
        # os.replace over the live file would swap the database under running terminals.
        raise BackupError(f"{dest} is the live database itself; write the backup somewhere else")
    # The temporary name keeps at most 100 bytes of the final one: a name that fits the file system
    # must not fail only because ".partial-<pid>" made it longer than NAME_MAX (255 on ext4).
    stem = os.fsdecode(os.fsencode(dest.name)[:100])
    tmp = dest.with_name(f".{stem}.partial-{os.getpid()}")
    try:
        _make_private_dirs(dest.parent)
        for leftover in (tmp, Path(f"{tmp}-journal")):
            leftover.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    except OSError as exc:  # a read-only or missing mount, no space, no permission
        raise BackupError(f"cannot write the backup {dest}: {_os_reason(exc)}") from exc
    pages = 0
    tail: tuple[int, str] | None = None

    def _step(_status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total
        if progress is not None:
            progress(total - remaining, total)

    src = _connect(source)
    try:
        # Pin the snapshot: every page comes from the same moment (see the module docstring).
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst, pages=STEP_PAGES, progress=_step)
            src.execute("COMMIT")
            # The source is in WAL mode and the copy inherits it; a backup file should stand alone.
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = [r[0] for r in dst.execute("PRAGMA integrity_check").fetchall()]
            with contextlib.suppress(sqlite3.OperationalError):  # a file with no card log yet
                tail = anchors.head(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source}: {exc}") from exc
    finally:
        src.close()
    if problems != ["ok"]:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"the copy of {source} failed integrity_check: {'; '.join(problems[:5])}")
    try:
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)  # ENAMETOOLONG for a name that does not fit, EISDIR in a race
        if tail is not None:
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            anchors.write_sidecar(dest, anchors.Anchor(terminal, tail[0], tail[1], at))
        _fsync_dir(dest.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot write the backup {dest}: {_os_reason(exc)}") from exc
    return pages


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def restore_database(backup: Path, target: Path, *, progress: Progress | None = None) -> int:
    """Write the backup at `backup` into the database at `target` through the backup API.

    Writing through SQLite (not replacing the file) keeps the target's WAL and lock files consistent.
    The caller must hold the data dir exclusively (services/instance_lock.acquire_exclusive).

    Returns:
        The number of pages copied.
    """
    problems = integrity_problems(backup)
    if problems:
        raise BackupError(f"{backup} is damaged ({'; '.join(problems[:5])}); nothing was restored")
    src = _connect(backup)
    dst = _connect(target)
    pages = 0

    def _step(_status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total
        if progress is not None:
            progress(total - remaining, total)

    try:
        src.backup(dst, pages=STEP_PAGES, progress=_step)
        # The backup file is in rollback-journal mode; the terminal runs in WAL.
        dst.execute("PRAGMA journal_mode=WAL")
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {backup} into {target}: {exc}") from exc
    finally:
        src.close()
        dst.close()
    os.chmod(target, 0o600)
    return pages


def schema_revision(path: Path) -> str | None:
    """The Alembic revision recorded in the database at `path` (None for an empty or new file)."""
    conn = _connect(path)
    try:
        with contextlib.suppress(sqlite3.OperationalError):
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return None if row is None else str(row[0])
        return None
    finally:
        conn.close()


def newest_log_time(path: Path) -> datetime | None:
    """When the newest card-log row at `path` was recorded; None for a missing, empty or unreadable
    file (never created, never migrated: `doctor` looks without touching)."""
    if not path.exists():
        return None
    conn = _connect(path)
    try:
        row = conn.execute("SELECT max(recorded_at) FROM card_log").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return from_text(row[0]) if row and row[0] else None


def is_known_revision(revision: str | None) -> bool:
    """True when `revision` is one of this version's migrations (False for a newer or foreign file)."""
    if revision is None:
        return False
    try:
        from alembic.script import ScriptDirectory  # only `restore` asks: serve never imports alembic

        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def auto_backup_name(revision: str, at: datetime) -> str:
    """`terminal-rev<revision>-<UTC time>.db`: sortable by time, saying which schema it holds."""
    return f"terminal-rev{revision}-{at.astimezone(UTC):%Y%m%dT%H%M%S%f}Z.db"


def pre_migration_backup(
    db_path: Path,
    backups_dir: Path,
    revision: str,
    *,
    keep: int = AUTO_BACKUPS_KEPT,
    now: datetime | None = None,
) -> Path:
    """Back up `db_path` into `backups_dir` before a migration, keeping the newest `keep` such backups.

    Returns:
        The new backup file.
    """
    backups_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(backups_dir, 0o700)
    dest = backups_dir / auto_backup_name(revision, now or datetime.now(UTC))
    copy_database(db_path, dest)
    prune_auto_backups(backups_dir, keep)
    return dest


def prune_auto_backups(backups_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` automatic backups (by the time in their name); return those deleted.

    Files not named by `auto_backup_name` (a backup someone put there by hand) are never touched.
    """
    found = sorted((m["at"], p) for p in backups_dir.iterdir() if (m := _AUTO_NAME.match(p.name)) is not None)
    doomed = [p for _, p in found[: max(0, len(found) - keep)]]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def chain_report(path: Path, key: LogKey | None = None) -> ChainReport:
    """`verify_chain` over the card log of the file at `path`, without opening it as a terminal;
    keyed rows are checked with `key` (the data dir's card-log key).

    Reads with plain sqlite3 and only the columns the hash covers, so it works on a backup made by an
    older schema and never migrates or otherwise writes the file.
    """
    conn = _connect(path)
    conn.row_factory = sqlite3.Row
    try:
        cursor = conn.execute("SELECT * FROM card_log ORDER BY id")

        def rows() -> Iterator[CardLogRow]:
            for r in cursor:
                values = {k: r[k] for k in r.keys() if k in _CHAIN_COLUMNS}  # noqa: SIM118 (sqlite3.Row)
                values["occurred_at"] = from_text(values["occurred_at"])
                values["recorded_at"] = from_text(values["recorded_at"])
                yield CardLogRow(**values)

        return verify_chain(rows(), key)
    finally:
        conn.close()
