"""What every way of opening the terminal's SQLite file shares: the busy timeout and the schema's
migration scripts.

Its own module so that `db.py` (the running terminal's engines) and `backup.py` (copies, restores,
the pre-migration backup that `db.migrate` takes) both read them without importing each other.
It must not open anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write lock before SQLite says "database is locked"."""

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> AlembicConfig:
    """Alembic's configuration for this version's migration scripts (alembic imported only here:
    a start that has nothing to migrate does without it, storage/schema_head.py)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg
