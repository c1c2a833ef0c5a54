"""Device events kept on disk until the broker has them: the bridge's store-and-forward.

A device is told ACK only after its event is committed here (SQLite, WAL, synchronous=FULL). The
event then stays until the broker answers its publish with a success PUBACK, so an event a device
was told is safe survives a broker outage, a bridge crash and a power cut alike; the terminal
deduplicates by (device, boot, seq), so publishing one twice after a restart is harmless. Without
this, an acknowledged event lived only in paho's memory (paho keeps its queue in RAM) and died with
the bridge while the broker was down.

A PUBACK is not the end either: mosquitto saves its store every second or two (the plant config),
so a broker crash can lose what it acknowledged since its last save. Sent events are therefore kept
for a replay window and published again after every reconnect (`replay_recent`); older ones are
pruned as new ones are marked sent.
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
    payload BLOB NOT NULL,
    sent_at REAL
)
"""
# sent_at: NULL while the broker has not acknowledged the event; the time of its PUBACK after.


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
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "sent_at" not in columns:  # an outbox written by a bridge from before the replay window
            self._db.execute("ALTER TABLE outbox ADD COLUMN sent_at REAL")
        self._db.execute("CREATE INDEX IF NOT EXISTS ix_outbox_sent ON outbox (sent_at, id)")

    def add(self, topic: str, payload: bytes) -> int:
        """Store one event durably; returns its id. Raises sqlite3.Error when it could not be stored
        (the caller must then not ACK the device, which retries)."""
        with self._lock:
            cursor = self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
            return int(cursor.lastrowid or 0)

    def pending(self, limit: int, skip: set[int]) -> list[tuple[int, str, bytes]]:
        """The oldest unsent events not in `skip` (already in flight), in arrival order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT ?",
                (limit + len(skip),),
            ).fetchall()
        return [(int(i), str(t), bytes(p)) for i, t, p in rows if i not in skip][:limit]

    def done(self, event_id: int, now: float, keep_s: float) -> None:
        """The broker acknowledged it: keep it `keep_s` for a replay, forget what is older."""
        with self._lock:  # one transaction: one fsync per acknowledgement, as the DELETE was before
            self._db.execute("BEGIN")
            self._db.execute("UPDATE outbox SET sent_at = ? WHERE id = ?", (now, event_id))
            self._db.execute("DELETE FROM outbox WHERE sent_at < ?", (now - keep_s,))
            self._db.execute("COMMIT")

    def replay_recent(self, window_s: float) -> int:
        """Mark unsent again the events acknowledged within `window_s` of the newest acknowledgement;
        returns how many.

        Counted back from the broker's last answer, not from now: what a broker crash loses is what
        it acknowledged just before it went down, however long it then stays down (counted from the
        reconnect, a broker down for longer than the window lost those events for good).
        """
        if window_s <= 0:
            return 0  # replay turned off
        with self._lock:
            cursor = self._db.execute(
                "UPDATE outbox SET sent_at = NULL WHERE sent_at >= (SELECT max(sent_at) FROM outbox) - ?",
                (window_s,),
            )
            return int(cursor.rowcount)

    def __len__(self) -> int:
        """Events the broker has not acknowledged yet."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
