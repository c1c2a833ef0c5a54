"""The errors storage can raise, in one place, so services catch them without importing a SQL driver.

The repositories run on SQLAlchemy (ORM, Core) and, on the hot paths, on the raw sqlite3
connection, whose errors SQLAlchemy does not wrap (an injected I/O error crashed the scanner,
issue 7): a caller that means "the write failed" must catch both.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import SQLAlchemyError

STORAGE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, sqlite3.Error)
"""Disk full, I/O error, lock timeout, a damaged file: nothing of the unit of work was committed."""


class SignalNotStored(SQLAlchemyError):
    """A signal of a group hit a storage error: the whole group is rolled back, none acknowledged."""


def storage_reason(exc: BaseException) -> str:
    """A few words for the floor on why a write failed (disk full, database busy...)."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "full" in text:
        return "disk full"
    if "locked" in text or "busy" in text:
        return "database busy"
    if "i/o" in text:
        return "disk error"
    return "storage error"
