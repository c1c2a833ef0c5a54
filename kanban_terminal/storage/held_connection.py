"""The write connection the signal groups keep between their units of work (`Database._held`).

A paced bin signal is a group of one, and a pool checkout, its reset and check-in cost 65 us of a
group's ~700 (issue 19): the groups' units run on one connection kept open, with its sqlite3
connection, `info` dict and busy timeout remembered, so a unit asks SQLAlchemy for none of them.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from kanban_terminal.storage.sqlite_file import BUSY_TIMEOUT_MS


class Holder(Protocol):
    """What of `Database` this reads and sets (a protocol: storage's modules import no cycle)."""

    write_engine: Engine
    _held: Connection | None
    _held_raw: Any
    _held_info: dict[Any, Any]
    _held_busy: int


class HeldConnection:
    """`with` over `Database._held`: opened when missing, closed and dropped after any error.

    A class and not a `@contextmanager`: the generator's context manager was 6 Python calls (its
    helper, `__init__`, `__enter__`, `__exit__` and two resumes) of every signal group (issue 19)."""

    __slots__ = ("_db",)

    def __init__(self, db: Holder):
        self._db = db

    def __enter__(self) -> Connection:
        db = self._db
        if db._held is None:
            conn = db.write_engine.connect()
            db._held_raw, db._held_info = conn.connection.driver_connection, conn.info
            db._held_busy = BUSY_TIMEOUT_MS  # every unit gives a pooled connection back with it
            db._held = conn
        return db._held

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        db = self._db
        if kind is not None and db._held is not None:
            conn, db._held = db._held, None
            db._held_raw, db._held_info = None, {}
            if db._held_busy != BUSY_TIMEOUT_MS:
                conn.invalidate()  # never into the pool with a short busy timeout: dropped instead
            conn.close()
