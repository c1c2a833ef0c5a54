"""The terminal's application context: configuration, database, clock, ids and bus in one place.

Everything a use case needs is passed in here rather than reached for globally, so tests give a
terminal a fixed clock and a temporary file, and two terminals can live in one test process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kanban_terminal.config import Loop, TerminalConfig
from kanban_terminal.domain.scans import ScanPolicy
from kanban_terminal.resilience_config import reserve_cards
from kanban_terminal.services.bus import Bus
from kanban_terminal.services.catalog import sync_catalog
from kanban_terminal.services.instance_lock import InstanceLock, acquire_use
from kanban_terminal.storage import log_key
from kanban_terminal.storage.db import Database

DB_FILENAME = "terminal.db"


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class Terminal:
    """One line-side terminal: its config, its database file and the services around them."""

    config: TerminalConfig
    db: Database
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = new_uuid
    bus: Bus = field(default_factory=Bus)
    instance_lock: InstanceLock | None = None
    """The data-dir locks this terminal holds while open (services/instance_lock.py)."""
    monotonic: Callable[[], float] = time.monotonic
    """The monotonic clock that goes with `clock`: every running duration counts on it (escalation
    tiers, a stop's downtime, request ages), so a wall-clock step bends none. One for the services,
    the runtime and the screen; tests give one that moves with their wall clock (tests/support/andon.py)."""

    def __post_init__(self) -> None:
        self.card_loops: dict[str, Loop] = {
            card: loop for loop in self.config.loops for card in loop.card_id_list()
        }
        # Red cards (issue 18) are cards of their loop too: the same scan, request and log.
        loops = {lp.id: lp for lp in self.config.loops}
        self.reserve_cards: dict[str, str] = {
            card: loop for card, loop in reserve_cards(self.config).items() if loop in loops
        }
        self.card_loops.update((card, loops[loop]) for card, loop in self.reserve_cards.items())
        self.policy = ScanPolicy(debounce=timedelta(seconds=self.config.terminal.debounce_seconds))

    @classmethod
    def open(
        cls,
        config: TerminalConfig,
        data_dir: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], str] = new_uuid,
        long_running: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Terminal:
        """Open (creating and migrating if needed) the terminal's database and sync the catalog.

        `long_running` is for `run` and `serve`: they own the data dir while up, so a second one and a
        `restore` are refused; a short headless verb (`scan`, `status`) may still open it beside them.
        They also checkpoint the WAL in the background (storage/checkpointer.py), a thread the
        runtime starts (kanban_terminal/runtime/).
        """
        lock = acquire_use(data_dir, long_running=long_running)
        try:
            db = Database(data_dir / DB_FILENAME, background_checkpoints=long_running)
        except BaseException:
            lock.release()
            raise
        try:
            # After the migration and before the catalog sync: the sync's "registered" rows are keyed.
            path = log_key.key_path(data_dir, config.terminal.log_key_file)
            if not path.exists() and db.log_was_keyed():
                # A new key would make every keyed row unverifiable: the old key must come back.
                raise log_key.LogKeyError(
                    f"refusing to start: the card log is keyed but its key file {path} is missing; put "
                    "back the key backup (docs/OPERATIONS.md), or point [terminal] log_key_file at it"
                )
            db.log_key = log_key.load_or_create(path, db.last_log_id)
        except BaseException:
            db.close()
            lock.release()
            raise
        terminal = cls(config, db, clock=clock, new_id=new_id, instance_lock=lock, monotonic=monotonic)
        try:
            sync_catalog(db, config, terminal.card_loops, clock())
        except BaseException:
            terminal.close()
            raise
        return terminal

    def close(self) -> None:
        self.db.close()
        if self.instance_lock is not None:
            self.instance_lock.release()
