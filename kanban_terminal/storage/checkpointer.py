"""Copying the WAL back into the database file from a thread of its own, not in a commit.

SQLite's auto-checkpoint runs inside the commit that pushes the WAL past 1,000 pages: that commit
also copies ~1,000 pages into the database file and fsyncs it before it returns. A bin signal's
group writes ~26 WAL pages, so every ~40th signal waited ~2 ms more for its request. Measured on
one-signal groups at 10 a second: p99 5.6 ms with it, 3.2 ms with the checkpoints here; that tail
was the p99 of the 5 signals/s latency figure (docs/BENCHMARKS.md).

Here a long-running terminal (`run`, `serve`) checkpoints from a thread with its own connection,
after the commit has returned and its request is on its way: the signal that filled the WAL no
longer pays for copying it. The thread takes the process's write turn first, so it never runs beside
one of our commits: tried beside them (PASSIVE alone, which SQLite allows), the 500 signals/s p99
got worse, 14.5-14.8 ms against 6.5-9.1 ms (two database-file fsyncs and WAL appends competing for
one disk is the likely cause; not traced further). The committing connections keep an
auto-checkpoint threshold, only a higher one (`BACKSTOP_PAGES`), so the WAL stays bounded even if
this thread is stuck. Durability does not change: a checkpoint only copies pages that are already
fsynced in the WAL, and it is SQLite's own.

It must not decide anything about the data; it knows the file and nothing else.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 10_000
"""The committing connections' own auto-checkpoint threshold while this thread runs (~40 MB of WAL):
reached only when the background checkpoints fall behind or stop."""

EVERY_COMMITS = 32
"""Checkpoint after this many write transactions (~830 WAL pages of one-signal groups, close to
SQLite's default threshold of 1,000, so each checkpoint stays as small as before)..."""

IDLE_S = 10.0
"""...or this long after the last checkpoint while anything is written (and never when nothing was:
the thread then sleeps until a commit wakes it, and checkpoints this long after that commit).

A one-signal commit rewrites mostly the same hot pages (the rightmost leaves of the card log and its
indexes), so a checkpoint after more commits copies fewer distinct pages a signal. One-signal commits
on a 20,000-card line with the PUBACK mark (bench/checkpoint_every.py, two runs, load 2.3-3.4), a
checkpoint every K commits, i.e. `IDLE_S` = 1, 2, 5, 10 s at 5 signals/s (10 s is cut to 32 commits,
6.4 s, by `EVERY_COMMITS`):

| K | checkpoint CPU a signal | WAL frames / distinct pages a checkpoint | pages copied a signal |
|---|---|---|---|
| 5 (1 s) | 89-103 us (1.00) | 151 / 51 | 10.1 |
| 10 (2 s) | 61-63 us (0.59-0.71) | 307 / 69 | 6.9 |
| 25 (5 s) | 35-36 us (0.35-0.39) | 768 / 100 | 4.1 |
| 32 (10 s) | 22-25 us (0.22-0.28) | 900 / 105 | 3.3 |

A reader (one loop's runway facts, read with the WAL at its longest) cost 580-602 us at K = 5 and
644-681 at K = 32 (it looks pages up in a longer WAL index; within the box's noise of the writer's
720-1,006 us a signal, which showed no trend with K). So at a line's real rate the WAL is copied back
every 32 commits, as at 500/s already (where a second holds more than 32 commits and `IDLE_S` does
not decide): the WAL is never longer than it already was there (~900 frames, ~3.7 MB, far below
`BACKSTOP_PAGES`). What it was before (1 s, the figures of the 0.25 s trial): a burst's groups of 256
signals write ~200 pages each, so there a checkpoint copies up to ~6,400 pages. Checkpointing every
0.25 s instead made 500/s worse and the burst no better (two interleaved pairs: 500/s p99 14.4 /
8.9 ms against 7.2 / 5.3 ms; ingest 0.81 / 0.99x against 1.06 / 0.99x), likely because each of the
extra checkpoints holds the write turn the worker waits for."""


class Checkpointer:
    """A thread that runs `PRAGMA wal_checkpoint(PASSIVE)` on the database at `path`."""

    def __init__(
        self,
        path: Path,
        write_turn: threading.RLock,
        *,
        every_commits: int = EVERY_COMMITS,
        idle_s: float = IDLE_S,
    ):
        """Args:
        path: the database file.
        write_turn: the process's write lock (`Database.write_lock`), held while checkpointing.
        every_commits, idle_s: when to checkpoint (after that many commits, or that long after
            the last checkpoint if anything was written).
        """
        self.path = path
        self.write_turn = write_turn
        self.every_commits = every_commits
        self.idle_s = idle_s
        self.checkpoints = 0
        """Checkpoints run (tests, benchmarks)."""
        self._commits = 0
        self._parked = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Copy back what start-up wrote, on the caller's thread, then checkpoint in the background.

        Start-up (the catalog sync registering every card) leaves its whole WAL behind: 1,428 pages
        for a 3,000-card line, copied by the first background checkpoint with the write turn held,
        20-60 ms on the shared dev VM (bench/stall_trace.py), while the first signals waited for
        that turn (issue 19). The runtime starts this before the link, so no signal waits now.
        """
        db = self._connect()
        if db is None:
            return
        with self.write_turn:
            self._checkpoint(db)
        self._thread = threading.Thread(target=self._run, args=(db,), name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection | None:
        """The one connection that start-up's checkpoint and the thread use; None (logged) if it fails."""
        try:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            # FULL, as the writers: the database file is fsynced before the WAL may be reused.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA wal_autocheckpoint=0")  # this connection only ever checkpoints
        except sqlite3.Error as exc:
            log.error(
                "background WAL checkpoints off (%s): commits checkpoint only at the %d-page backstop",
                exc,
                BACKSTOP_PAGES,
            )
            return None
        return db

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        """Copy the WAL back; the caller holds the write turn."""
        self._commits = 0
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # a full disk, an I/O error: the writers' backstop holds
            log.warning("WAL checkpoint failed, retrying later: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def parked(self) -> bool:
        """The thread sleeps with nothing to copy back, until a commit (tests)."""
        return self._parked

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def committed(self) -> None:
        """A write transaction of this process ended (called with the write turn released)."""
        self._commits += 1  # a lost increment under a race only delays a checkpoint by one commit
        if self._parked or self._commits >= self.every_commits:
            self._wake.set()  # parked: its `idle_s` starts now; the last: checkpoint at once

    def _park(self) -> None:
        """Nothing written since the last checkpoint: sleep until a commit says so (`committed`).

        Waking every `idle_s` to find nothing was one of an idle `serve`'s wake-ups a second
        (bench/idle_wakeups.py, issue 19). Only a parked thread is woken by a commit: waking it on
        every first commit after a checkpoint cost a wake-up a second more at 5 signals/s (strace).
        """
        self._parked = True
        if self._commits == 0:  # after raising the flag: a commit now either is seen here or wakes us
            self._wake.wait()
        self._parked = False
        self._wake.clear()

    def _run(self, db: sqlite3.Connection) -> None:
        try:
            while not self._stop.is_set():
                if self._commits == 0:
                    self._park()
                    continue
                self._wake.wait(self.idle_s)  # cut short after `every_commits`, or by `stop`
                self._wake.clear()
                if self._stop.is_set():
                    break
                if self._commits == 0:
                    continue
                # Not `Database.writing()`: that counts as a commit and would wake this thread again.
                # A writer holding the turn for long (a restore, a stuck disk): try again later.
                if not self.write_turn.acquire(timeout=self.idle_s):
                    continue
                try:
                    self._checkpoint(db)
                finally:
                    self.write_turn.release()
        finally:
            db.close()
