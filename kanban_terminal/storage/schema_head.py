"""Is the database already at this version's schema? Answered without importing alembic.

Opening the terminal ran alembic on every start only to learn that nothing was to do: `import
alembic` pulls in mako and pygments and cost 0.45-0.86 s of a 2-8 s `run` start on the shared dev
box (`python -X importtime`, issue 15, whose target is the first screen within 1.0 s). The newest
revision is read here from the migration scripts' own `revision = "..."` / `down_revision = "..."`
lines, and the stored one with one SELECT; only when they differ (a new or older database) does
`db.migrate` import alembic and do the real work, so a wrong answer here can only cost time, never
skip a migration. tests/unit/test_schema_head.py checks it against alembic's own head.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kanban_terminal.storage import sqlite_file

_ASSIGN = re.compile(r"""^(revision|down_revision)\s*(?::[^=]+)?=\s*(?:["']([^"']+)["']|None)""", re.M)


def script_head(versions: Path | None = None) -> str | None:
    """The one revision no script names as its `down_revision`; None if that is not exactly one.

    `versions` defaults to the scripts alembic itself reads (`sqlite_file.MIGRATIONS`, looked up at
    call time), so this answer and alembic's can never be about two different sets of scripts."""
    if versions is None:
        versions = sqlite_file.MIGRATIONS / "versions"
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _ASSIGN.finditer(path.read_text(encoding="utf-8")))
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            downs.add(found["down_revision"])
    heads = revisions - downs
    return next(iter(heads)) if len(heads) == 1 else None


def stored_revision(dbapi_connection: Any) -> str | None:
    """The revision the database says it is at (None: a new file, or no alembic table yet)."""
    row = dbapi_connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    if row is None:
        return None
    rows = dbapi_connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return str(rows[0][0]) if len(rows) == 1 else None
