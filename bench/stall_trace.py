"""`serve` with a stall tracer: what the process was doing whenever a signal could have waited.

    python bench/stall_trace.py serve --config FILE --data-dir DIR --mqtt URL   (as the runtime's main)
    python bench/line_pc.py --trace ...                                       (runs `serve` through it)

Prints to stderr, each line stamped with seconds since start-up finished ("t+3.312"):

* `gc`: every cyclic collection over 2 ms, with its generation and what it collected;
* `lag`: a thread that sleeps 2 ms at a time woke over 10 ms late: some thread held the GIL that long
  (the stacks of every thread when it got it back are printed: the culprit is usually still there);
* `group`: an inbound group that took over 10 ms from its first message to its acks;
* `turn`: the write turn (`Database.write_lock`) held over 10 ms (a checkpoint, a long transaction);
* `checkpoint`: each background WAL checkpoint over 5 ms.

A diagnostic for the bench only, not the product: the monitor itself wakes 500 times a second.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kanban_terminal.deferred_imports import defer_unused_stdlib  # noqa: E402

defer_unused_stdlib()  # as `python -m kanban_terminal.runtime` starts
from kanban_terminal.runtime import inbound, serve  # noqa: E402
from kanban_terminal.storage import checkpointer, db  # noqa: E402

T0 = time.monotonic()


def say(what: str) -> None:
    sys.stderr.write(f"stall-trace t+{time.monotonic() - T0:.3f} {what}\n")
    sys.stderr.flush()


def trace_gc() -> None:
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000
        if ms > 2:
            say(f"gc gen{info['generation']} {ms:.1f} ms collected {info['collected']}")

    gc.callbacks.append(callback)


def trace_lag(step_s: float = 0.002, limit_ms: float = 10.0) -> None:
    def run() -> None:
        me = threading.get_ident()
        while True:
            t = time.perf_counter()
            time.sleep(step_s)
            late = (time.perf_counter() - t - step_s) * 1000
            if late > limit_ms:
                names = {th.ident: th.name for th in threading.enumerate()}
                stacks = []
                for ident, frame in sys._current_frames().items():
                    if ident == me:
                        continue
                    top = traceback.extract_stack(frame)[-3:]
                    where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(top))
                    stacks.append(f"    {names.get(ident, ident)}: {where}")
                say(f"lag {late:.1f} ms\n" + "\n".join(stacks))

    threading.Thread(target=run, name="stall-trace", daemon=True).start()


class TimedLock:
    """The write turn, timed: holds over `limit_ms` are reported with the holder's thread name."""

    def __init__(self, lock: Any, limit_ms: float = 10.0):
        self._lock = lock
        self._limit = limit_ms
        self._since: dict[int, float] = {}

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        got = bool(self._lock.acquire(*args, **kwargs))
        if got:
            self._since.setdefault(threading.get_ident(), time.perf_counter())
        return got

    def release(self) -> None:
        ident = threading.get_ident()
        self._lock.release()
        if not self._lock._is_owned():
            held = (time.perf_counter() - self._since.pop(ident, time.perf_counter())) * 1000
            if held > self._limit:
                say(f"turn held {held:.1f} ms by {threading.current_thread().name}")

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())


def trace_storage() -> None:
    original_init = db.Database.__init__

    def init(self: db.Database, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.write_lock = TimedLock(self.write_lock)  # type: ignore[assignment]
        if self.checkpointer is not None:
            self.checkpointer.write_turn = self.write_lock  # type: ignore[assignment]

    db.Database.__init__ = init  # type: ignore[method-assign]

    class _Rows:
        def __init__(self, rows: list[Any]):
            self._rows = rows

        def fetchall(self) -> list[Any]:
            return self._rows

    class TimedConnection:
        def __init__(self, con: Any):
            self._con = con

        def execute(self, sql: str, *args: Any) -> Any:
            if "wal_checkpoint" not in sql:
                return self._con.execute(sql, *args)
            t = time.perf_counter()
            rows = self._con.execute(sql, *args).fetchall()
            ms = (time.perf_counter() - t) * 1000
            if ms > 5 or (rows and rows[0][2] > 500):
                # (busy, pages in the WAL, pages copied back): pages do not depend on the box's load
                say(f"checkpoint {ms:.1f} ms, WAL {rows[0][1]} pages, copied {rows[0][2]}")
            return _Rows(rows)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    real_connect = checkpointer.sqlite3.connect

    class Sqlite3Shim:
        def __getattr__(self, name: str) -> Any:
            import sqlite3

            return getattr(sqlite3, name)

        @staticmethod
        def connect(*args: Any, **kwargs: Any) -> Any:
            return TimedConnection(real_connect(*args, **kwargs))

    checkpointer.sqlite3 = Sqlite3Shim()  # type: ignore[assignment]


def trace_groups(limit_ms: float = 10.0) -> None:
    original = inbound.InboundWorker._handle

    def handle(self: inbound.InboundWorker, items: list[Any], inline: bool = False) -> None:
        t = time.perf_counter()
        original(self, items, inline)
        ms = (time.perf_counter() - t) * 1000
        if ms > limit_ms:
            where = "paho's thread" if inline else "the worker thread"
            say(f"group of {len(items)} took {ms:.1f} ms on {where}")

    inbound.InboundWorker._handle = handle  # type: ignore[method-assign]


def main() -> int:
    trace_gc()
    trace_storage()
    trace_groups()
    original_freeze = serve.freeze_start_up_objects

    def freeze() -> None:
        global T0
        original_freeze()
        T0 = time.monotonic()
        say(f"ready (pid {os.getpid()}); gc thresholds {gc.get_threshold()}, counts {gc.get_count()}")
        trace_lag()

    serve.freeze_start_up_objects = freeze  # type: ignore[assignment]
    return serve.main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
