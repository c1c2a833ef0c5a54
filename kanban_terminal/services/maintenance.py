"""Backup and restore of a terminal's data dir: the rules around storage/backup.py's file copies.

A backup may be taken at any time (the online backup API does not stop scans). A restore replaces the
terminal's history, so it runs only when nobody has the data dir open (services/instance_lock.py),
only from a sound file of a schema this version knows, keeps what it replaces, and checks the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kanban_terminal.progress import ProgressCallback
from kanban_terminal.services.instance_lock import acquire_exclusive
from kanban_terminal.storage import backup as files
from kanban_terminal.storage import log_key
from kanban_terminal.storage.card_log import ChainReport
from kanban_terminal.storage.db import BACKUPS_DIRNAME
from kanban_terminal.storage.errors import STORAGE_ERRORS
from kanban_terminal.storage.log_key import LogKey

DB_FILENAME = "terminal.db"  # the same name services/terminal.py uses; kept here so no DB is opened


@dataclass(frozen=True)
class RestoreResult:
    pages: int
    replaced_copy: Path | None
    """Where the database that was replaced was saved first (None when there was none)."""
    chain: ChainReport


def backup_terminal(
    data_dir: Path, dest: Path, *, progress: ProgressCallback | None = None, terminal: str = ""
) -> int:
    """Copy the terminal database of `data_dir` to `dest` while terminals may keep running; its log's
    head (of terminal id `terminal`) goes beside it as `<dest>.anchor.json`.

    Returns:
        Pages copied.
    """
    return files.copy_database(data_dir / DB_FILENAME, dest, progress=progress, terminal=terminal)


def restore_terminal(
    data_dir: Path,
    source: Path,
    *,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
    key: LogKey | None = None,
) -> RestoreResult:
    """Replace the terminal database of `data_dir` with the backup at `source`; its keyed rows are
    checked with `key` (the terminal's card-log key; default: the key file in `data_dir`).

    Raises:
        DataDirBusy: a terminal (or a short command) has the data dir open.
        BackupError: the backup is missing, damaged, of an unknown (newer) schema or its log does not
            verify; nothing was changed.
    """
    if not source.is_file():
        raise files.BackupError(f"{source}: no such backup file")
    key = key or log_key.load(log_key.key_path(data_dir, None))
    lock = acquire_exclusive(data_dir)
    try:
        return _restore_locked(data_dir, source, progress, now, key)
    except STORAGE_ERRORS as exc:
        raise files.BackupError(f"cannot restore {source}: {exc}") from exc
    finally:
        lock.release()


def _restore_locked(
    data_dir: Path, source: Path, progress: ProgressCallback | None, now: datetime | None, key: LogKey | None
) -> RestoreResult:
    problems = files.integrity_problems(source)
    if problems:
        raise files.BackupError(f"{source} is damaged ({'; '.join(problems[:3])}); nothing was restored")
    revision = files.schema_revision(source)
    if not files.is_known_revision(revision):
        raise files.BackupError(
            f"{source} has schema {revision or 'none'}, which this version does not know "
            "(not a terminal database, or made by a newer kanban-terminal); nothing was restored"
        )
    chain = files.chain_report(source, key)
    if not chain.ok:
        raise files.BackupError(
            f"{source}: the card log does not verify (first bad row {chain.first_broken_id}: "
            f"{chain.reason}); nothing was restored"
        )
    target = data_dir / DB_FILENAME
    saved: Path | None = None
    if target.exists():
        stamp = (now or datetime.now(UTC)).astimezone(UTC)
        saved = data_dir / BACKUPS_DIRNAME / f"replaced-by-restore-{stamp:%Y%m%dT%H%M%S%f}Z.db"
        files.copy_database(target, saved)
    pages = files.restore_database(source, target, progress=progress)
    after = files.chain_report(target, key)
    if not after.ok or files.integrity_problems(target):
        raise files.BackupError(f"{target} did not verify after the restore; the old file is in {saved}")
    return RestoreResult(pages, saved, after)
