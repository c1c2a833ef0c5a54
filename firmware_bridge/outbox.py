"""Device events kept on disk until the broker has them: the bridge's store-and-forward.

A device is told ACK only after its event is committed here (SQLite, WAL, synchronous=FULL). The
event then stays until the broker answers its publish with a success PUBACK, so an event a device
was told is safe survives a broker outage, a bridge crash and a power cut alike; the terminal
deduplicates by (device, boot, seq), so publishing one twice after a restart is harmless. Without
this, an acknowledged event lived only in paho's memory (paho keeps its queue in RAM) and died with
the bridge while the broker was down.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
)
"""


class Outbox:
    """A FIFO of (topic, payload) on disk; `path=None` keeps it in memory (tests, simulators)."""

    def __init__(self, path: Path | None):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path or ":memory:", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def add(self, topic: str, payload: bytes) -> int:
        """Store one event durably; returns its id. Raises sqlite3.Error when it could not be stored
        (the caller must then not ACK the device, which retries)."""
        with self._lock:
            cursor = self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
            return int(cursor.lastrowid or 0)

    def pending(self, limit: int, skip: set[int]) -> list[tuple[int, str, bytes]]:
        """The oldest events not in `skip` (already in flight), in arrival order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", (limit + len(skip),)
            ).fetchall()
        return [(int(i), str(t), bytes(p)) for i, t, p in rows if i not in skip][:limit]

    def done(self, event_id: int) -> None:
        """The broker has it: forget it."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (event_id,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
