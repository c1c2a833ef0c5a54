"""`serve` with its Python threads' names given to the OS, so /proc shows CPU per thread by name.

    python bench/thread_names.py serve --config FILE --data-dir DIR --mqtt URL   (as the runtime's main)
    python bench/line_pc.py --threads ...                                       (runs `serve` through it)

Python 3.11 does not name OS threads: every task of `serve` is "python" in /proc/PID/task/*/comm.
Here each `threading.Thread` names itself (prctl PR_SET_NAME, first 15 bytes) as it starts, and
the main thread is "main"; bench/line_pc.py then reads utime+stime per name over a workload.
A bench tool, not the product: it changes nothing but the names.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


def name_me(name: str) -> None:
    _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def main() -> int:
    original = threading.Thread.run

    def run(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
        name_me(self.name)
        original(self, *args, **kwargs)

    threading.Thread.run = run  # type: ignore[method-assign]
    name_me("main")
    from kanban_terminal.deferred_imports import defer_unused_stdlib

    defer_unused_stdlib()  # as `python -m kanban_terminal.runtime` starts (its RSS is read through here)
    from kanban_terminal.runtime import serve

    return serve.main(sys.argv[1:])


def cpu_by_thread(pid: int, tick: int) -> dict[str, float]:
    """CPU seconds (utime+stime) of each live thread of `pid`, summed by OS thread name."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that just ended
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


if __name__ == "__main__":
    raise SystemExit(main())
