"""Opening the terminal's SQLite file the one safe way, and running its migrations.

WAL with synchronous=FULL: a commit returns only after the WAL is fsynced, so a scan shown as accepted
survives a process crash and a power loss (on a disk that honours flushes; no software can do better
on one that lies). Every write transaction starts with BEGIN IMMEDIATE and waits up to the busy
timeout for the write lock, so a second writer (the `scan` CLI beside the running TUI) waits at the
start instead of failing half-way. Readers use a second engine with deferred BEGIN so they never
take the write lock.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlmodel import Session

from kanban_terminal.storage.checkpointer import BACKSTOP_PAGES, Checkpointer
from kanban_terminal.storage.held_connection import HeldConnection
from kanban_terminal.storage.log_key import KEYED_PREFIX, LogKey
from kanban_terminal.storage.schema_head import script_head, stored_revision
from kanban_terminal.storage.sqlite_file import BUSY_TIMEOUT_MS, alembic_config
from kanban_terminal.storage.unit_of_work import UnitOfWork

SHORT_WAIT_MS = 100
"""How long a unit of work under `short_waits` waits for another process's write lock: a CLI verb's
write takes milliseconds; longer is a restore or a stuck process, worth a hand-over."""

BACKUPS_DIRNAME = "backups"
"""Automatic pre-migration backups go to this folder of the data dir."""


RAW_BEGUN = "kanban_raw_begun"
"""Set in a connection's `info` while `_held_unit` holds a transaction it began on the sqlite3
connection itself: SQLAlchemy, asked to begin on top (the ORM session of an andon signal), joins it."""


class DatabaseError(Exception):
    """The database cannot be used; the message says why and what to do."""


def _make_engine(path: Path, begin: str, *, autocheckpoint_pages: int | None = None) -> Engine:
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module, which would BEGIN late and deferred.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        if autocheckpoint_pages is not None:
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.info.get(RAW_BEGUN):
            return  # the held unit already ran BEGIN IMMEDIATE itself (`_held_unit`): join it
        conn.connection.driver_connection.execute(begin)

    return engine


def _secure_create(path: Path) -> None:
    """Create the data dir 0700 and the database file 0600 whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def migrate(engine: Engine, *, backup_dir: Path | None = None) -> None:
    """Bring the schema to the newest revision; refuse a database written by a newer version.

    Args:
        engine: the write engine of the database.
        backup_dir: where to put an automatic backup (online backup API) before an existing database
            is migrated; None for no backup. A new, empty database is never backed up.
    """
    with engine.connect() as conn:
        at = stored_revision(conn.connection.driver_connection)
    if at is not None and at == script_head():
        return  # the usual start: nothing to migrate, and no alembic import (schema_head.py)
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    if current is not None:
        try:
            script.get_revision(current)
        except Exception:
            raise DatabaseError(
                f"This database was written by a newer kanban-terminal (schema {current}). "
                "Install that version again; this one will not touch the file."
            ) from None
        if backup_dir is not None and engine.url.database:
            # Before anything changes: an upgrade that goes wrong can then be undone with `restore`.
            # Imported here: only a migration backs up (storage.backup, ~50 KB of every `serve`).
            from kanban_terminal.storage.backup import pre_migration_backup

            pre_migration_backup(Path(engine.url.database), backup_dir, current)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The terminal's database file: one engine for writes, one for reads."""

    def __init__(self, path: Path, *, background_checkpoints: bool = False, log_key: LogKey | None = None):
        """Args:
        path: the database file (created 0600 if missing, then migrated).
        log_key: the terminal's card-log key (storage/log_key.py): rows appended through this
            database are keyed with it and `verify-log` checks them with it. None writes plain
            SHA-256 rows (tools and tests that open a bare file); `Terminal.open` sets it after
            the migration.
        background_checkpoints: copy the WAL back from a thread of its own (`Checkpointer`)
            instead of inside every ~40th commit; for the long-running `run` and `serve`. The
            runtime starts that thread (kanban_terminal/runtime/); `close` stops it.
        """
        self.path = path
        self.log_key = log_key
        self.write_lock = threading.RLock()
        """Held around every write transaction of this process (`writing()`). SQLite's busy
        handler makes a second writer sleep 1, 2, 5, 10, 15... ms before it retries, however soon
        the lock frees: the inbound worker and the outbox relay took turns that way and a 500/s
        stream queued for 0.1-0.8 s (bench/mqtt_pipeline.py, traced). Waiting here wakes the next
        writer the moment the last one commits. Other processes still meet the busy timeout."""
        _secure_create(path)
        self.checkpointer = Checkpointer(path, self.write_lock) if background_checkpoints else None
        self.write_engine = _make_engine(
            path, "BEGIN IMMEDIATE", autocheckpoint_pages=BACKSTOP_PAGES if self.checkpointer else None
        )
        self.read_engine = _make_engine(path, "BEGIN")
        self._held: Connection | None = None
        """The write connection `unit_of_work(held=True)` keeps between units (the signal groups)."""
        self._held_raw: Any = None
        self._held_info: dict[Any, Any] = {}
        """`_held`'s sqlite3 connection and `info` dict, taken once when it is opened (`HeldConnection`)."""
        self._held_busy = BUSY_TIMEOUT_MS
        """The busy timeout `_held` has now: a unit changes it only when it wants another one."""
        self._waits = threading.local()
        """`short` while a thread's units of work must not wait long for the lock (`short_waits`)."""
        self._held_by: threading.Thread | None = None
        """The thread `_held` belongs to: the first to ask, or the next once that one has ended. Any
        other thread gets a pooled one."""
        self.log_watchers: list[Callable[[], None]] = []
        """Called after each commit that appended card-log rows, whatever the unit announced: many
        units write a log row and release no event (a clock step, a badge log-in, a runway warning
        with material calls off), and the log's anchor must still follow the head
        (adapters/anchor_publisher.py; a runway warning 5 s after the last status stayed unanchored
        for `anchor_every_minutes`)."""
        self._held_turn = HeldConnection(self)
        try:
            migrate(self.write_engine, backup_dir=path.parent / BACKUPS_DIRNAME)
        except BaseException:
            self.close()  # a refused (newer) database must not be left with open connections
            raise

    def last_log_id(self) -> int:
        """The highest card-log id (0 for an empty log): where a new log key starts keying."""
        with self.reading() as session:
            return int(session.connection().exec_driver_sql("SELECT max(id) FROM card_log").scalar() or 0)

    def log_was_keyed(self) -> bool:
        """Whether the newest card-log row is keyed (HMAC): its key must exist somewhere."""
        with self.reading() as session:
            tail = session.connection().exec_driver_sql("SELECT hash FROM card_log ORDER BY id DESC LIMIT 1")
            found = tail.scalar()
        return bool(found) and str(found).startswith(KEYED_PREFIX)

    @contextmanager
    def short_waits(self) -> Iterator[None]:
        """Units of work of this thread meet another process's write lock for SHORT_WAIT_MS only,
        then fail with "database is locked" (for paho's thread: runtime/inbound.py hands the
        messages to its worker thread, which waits the full busy timeout instead)."""
        self._waits.short = True
        try:
            yield
        finally:
            self._waits.short = False

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Take this process's write turn; after the busy timeout go ahead anyway, so a stuck
        writer still ends in SQLite's own "database is locked" error, as before the lock."""
        acquired = self.write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            yield
        finally:
            self._given_back(acquired)

    def _write_connection(self, held: bool) -> AbstractContextManager[Connection]:
        """A pooled write connection, or with `held` the one kept between units of work.

        Why held: a pool checkout, its reset and check-in cost 65 us of CPU a unit of work against
        a group's ~700 us (an empty `unit_of_work` 77 us, on a held connection 12 us; issue 19),
        and a paced bin signal is a group of one. Only the signal groups ask for it (on paho's
        thread, or the inbound worker's when paho's thread hands a group over), always inside the
        write turn; after any error it is closed and the next unit opens a fresh one, so a
        connection in doubt is never reused. It belongs to one thread (the first to ask), so even a
        write turn taken late (`writing()`'s timeout) never shares it between two."""
        me = threading.current_thread()
        holder = self._held_by
        # `is not me` first: the owner is alive, and `is_alive()` is 3 Python calls a group.
        if held and holder is not me and (holder is None or not holder.is_alive()):
            self._held_by = holder = me  # the first, or the one after it (paho's thread restarted)
        if held and holder is me:
            return self._held_turn
        return self.write_engine.connect()

    @contextmanager
    def unit_of_work(
        self, *, fsync: bool = True, release: Callable[[object], None] | None = None, held: bool = False
    ) -> Iterator[UnitOfWork]:
        """The one way to write: a unit of work that commits together or not at all.

        Args:
            fsync: False commits without waiting for the disk (synchronous=NORMAL for this
                transaction only). Only for writes that may be lost on power loss and redone: in WAL
                the next fsynced commit flushes them too, in order, so they can vanish only together
                with everything after them.
            release: where the unit's events go once it has committed (the terminal's bus).
            held: on the write connection kept between units (`_write_connection`): for the many
                small units of the signal groups; a thread other than its owner gets a pooled one.
        """
        uow: UnitOfWork | None = None
        # `writing()` written out: its context manager was 4 Python calls a signal group (issue 19).
        acquired = self.write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            with self._write_connection(held) as conn:
                # The held connection's sqlite3 connection and `info` were taken when it was opened:
                # SQLAlchemy's properties for them were 6 Python calls a signal group (issue 19).
                kept = conn is self._held
                raw = self._held_raw if kept else conn.connection.driver_connection
                assert raw is not None, "a pooled connection always has its sqlite3 connection"
                if not fsync:
                    raw.execute("PRAGMA synchronous=NORMAL")  # refused inside a transaction: set before BEGIN
                short = getattr(self._waits, "short", False)
                restore = short and not kept
                if kept:
                    # Kept at what its owner asks for (paho's thread: always short), not set and
                    # restored around each unit: the pair was ~70 us of a cold group (issue 19,
                    # paho5). `HeldConnection` drops a held connection whose timeout is not the
                    # default instead of giving it back to the pool.
                    wanted = SHORT_WAIT_MS if short else BUSY_TIMEOUT_MS
                    if self._held_busy != wanted:
                        raw.execute(f"PRAGMA busy_timeout={wanted}")
                        self._held_busy = wanted
                elif short:
                    raw.execute(f"PRAGMA busy_timeout={SHORT_WAIT_MS}")
                try:
                    if held:
                        # Begun and committed on sqlite3 itself: SQLAlchemy's `begin()` and commit
                        # (the "begin" event, the transaction object, the reset bookkeeping) were
                        # ~40 Python calls of a one-signal group's ~540 (cProfile; issue 19: a paced
                        # signal is a group of one). Asked for a transaction after all (the ORM
                        # session of an andon signal), SQLAlchemy begins one on top that joins this
                        # one (`RAW_BEGUN`); then its commit or rollback is the unit's.
                        raw.execute("BEGIN IMMEDIATE")
                        info = self._held_info if kept else conn.info
                        info[RAW_BEGUN] = True
                        try:
                            uow = UnitOfWork(conn, self.log_key, raw)
                            try:
                                yield uow
                                uow.flush()
                            finally:
                                uow.close_session()
                            if conn.in_transaction():
                                conn.commit()
                            else:
                                raw.commit()
                        except BaseException:
                            if conn.in_transaction():
                                conn.rollback()
                            elif raw.in_transaction:
                                raw.rollback()
                            raise  # and `_write_connection` closes the held connection
                        finally:
                            info.pop(RAW_BEGUN, None)
                    else:
                        with conn.begin():
                            uow = UnitOfWork(conn, self.log_key)
                            try:
                                yield uow
                                uow.flush()
                            finally:
                                uow.close_session()
                finally:
                    if restore:
                        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                    if not fsync:
                        try:
                            raw.execute("PRAGMA synchronous=FULL")
                        except BaseException:
                            conn.invalidate()  # never back to the pool without fsync
                            raise
        except BaseException:
            self._given_back(acquired)
            if uow is not None:
                uow.rolled_back()  # after the write turn is given back, like the commit's hooks
            raise
        self._given_back(acquired)
        assert uow is not None
        uow.committed(release)
        if self.log_watchers and uow.log_moved:
            for watcher in list(self.log_watchers):
                watcher()  # a watcher only sets a flag or an Event: it must not raise

    def _given_back(self, acquired: bool) -> None:
        """The end of a write turn (`writing()`)."""
        if acquired:
            self.write_lock.release()
        if self.checkpointer is not None:
            self.checkpointer.committed()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work through the ORM: for the use cases written on SQLModel."""
        with self.unit_of_work() as uow:
            yield uow.session

    @contextmanager
    def write_connection(self, *, fsync: bool = True) -> Iterator[Connection]:
        """A unit of work on its Core connection (see `unit_of_work` for `fsync`)."""
        with self.unit_of_work(fsync=fsync) as uow:
            yield uow.conn

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """One read transaction on the read engine's sqlite3 connection: every query in it sees the
        same snapshot (the relay's outbox reads, which skip the ORM for speed)."""
        with self.read_engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None, "a pooled connection always has its sqlite3 connection"
            raw.execute("BEGIN")
            try:
                yield raw
            finally:
                raw.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A consistent read-only snapshot."""
        with Session(self.read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        # The held connection only in the write turn: never under a unit still running on it (a
        # worker that did not stop in time keeps it, and the process's exit closes it).
        if self._held is not None and self.write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            try:
                held, self._held = self._held, None
                if held is not None:
                    held.close()
            finally:
                self.write_lock.release()
        self.write_engine.dispose()
        self.read_engine.dispose()
