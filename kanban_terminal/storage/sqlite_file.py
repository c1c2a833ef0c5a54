"""What every way of opening the terminal's SQLite file shares: the busy timeout and the schema's
migration scripts.

Its own module so that `db.py` (the running terminal's engines) and `backup.py` (copies, restores,
the pre-migration backup that `db.migrate` takes) both read them without importing each other.
It must not open anything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock before SQLite says "database is locked"."""

MIGRATIONS = Path(__file__).parent / "migrations"


_REVISION = re.compile(r'^revision\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)


def schema_heads() -> set[str]:
    """The newest revisions of this version's migration scripts, read from their text.

    Why not alembic: importing it (and mako, pygments) took 11.7 MB of `serve`'s RSS and ~0.4 s
    of its start-up, for a check that finds the file already at head on every start but the first
    after an upgrade (issue 19). Alembic still does every migration, and `db.migrate` falls back
    to it whenever this says anything but "at head".
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(text))
        parents.update(_DOWN_REVISION.findall(text))
    return revisions - parents


def alembic_config() -> AlembicConfig:
    """Alembic's configuration for this version's migration scripts."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg
