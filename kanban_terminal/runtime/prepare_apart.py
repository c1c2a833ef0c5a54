"""A first start, or the first after an upgrade, opens the terminal's database in a child process.

Opening a new or older database migrates it (alembic, mako) and registers the config's cards; what
that imports and allocates stays in the process for the rest of its life. A long-running `serve`
started on a fresh data dir carried it for weeks: a 40-card line ran at 75.8 MB when ready and
77.0 MB two minutes later, against 62.4 / 63.1 MB for the same line restarted (issue 19's target is
<= 64 MB ready; /tmp measurement, 2026-12-06, `.pyc` cached). So `serve`'s entry points first ask
whether the file is at this version's schema (one SELECT, storage/schema_head.py) and, when it is
not, let a child `python -m kanban_terminal.runtime prepare` open it and exit; the `serve` process
then finds nothing to migrate. The child's failure changes nothing here: the in-process open that
follows meets the same problem (a newer database, a full disk) and says it as before.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def needs_preparing(data_dir: Path) -> bool:
    """True when the data dir has no database yet, or one that is not at this version's schema."""
    from kanban_terminal.services.terminal import DB_FILENAME
    from kanban_terminal.storage.schema_head import script_head, stored_revision

    path = data_dir / DB_FILENAME
    if not path.exists():
        return True
    con = sqlite3.connect(path)
    try:
        at = stored_revision(con)
    except sqlite3.Error:
        return True  # let the child (and then the in-process open) say what is wrong with it
    finally:
        con.close()
    return at is None or at != script_head()


def prepare_apart(config_path: Path, data_dir: Path) -> bool:
    """Open the terminal's database in a child process if it needs a migration or its first
    registration; returns whether a child ran. Call it before the long-running process opens it."""
    if not needs_preparing(data_dir):
        return False
    log.info("first start or upgrade: the database is prepared in a child process (%s)", data_dir)
    argv = [sys.executable, "-m", "kanban_terminal.runtime", "prepare", "--config", str(config_path)]
    done = subprocess.run([*argv, "--data-dir", str(data_dir)], check=False)
    if done.returncode != 0:
        log.warning(
            "preparing the database in a child process failed (exit %d); opening it in this process, "
            "which says what is wrong",
            done.returncode,
        )
    return True
