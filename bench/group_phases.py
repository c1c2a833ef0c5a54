"""CPU by phase of a one-signal group, warm and cold, in-process (issue 19, branch paho5).

    python bench/group_phases.py [--root DIR] [--groups 150] [--thrash-mb 64] [--pause-ms 0]

Runs bench/group_cost.py's child (one-signal groups through `InboundWorker._handle` under
`short_waits`, each marking the previous group's PUBACK, a PASSIVE checkpoint after each) with the
group's phases wrapped in a `time.thread_time_ns` counter, and prints each phase's median CPU a
group (inclusive: `SignalApplier.apply` holds `record_scan`, which holds `BufferedLog.append`...).
`--thrash-mb` writes over that many MB before each group (`GROUP_COST_THRASH_MB`), so every group
starts with empty caches, as a paced signal does at 5/s on this shared box; `--thrash-mb 0` runs
them back to back (warm, apart from the fsync's sleep).

Why: cProfile puts no function of the group above a few per cent, and its overhead hides what a
cold group pays. Timed cold, a bin signal's decode is 11 us warm and ~150 us cold, and the
pieces of the group keep their share: a cold group pays for every cache line it touches, so the
phases that touch the most (the commit's pages, the decode, the card log's hashing) lead.
Each wrapper costs two clock syscalls (~1-2 us): read the phases as shares, not as `serve`'s CPU.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PHASES = (
    ("kanban_terminal.runtime.inbound", "InboundWorker", "_handle"),
    ("kanban_terminal.adapters.wire.decode", "InboundDecoder", "decode"),
    ("kanban_terminal.services.signals", "SignalApplier", "apply"),
    ("kanban_terminal.storage.unit_of_work", "UnitOfWork", "__init__"),
    ("kanban_terminal.storage.inbound", "InboundKeys", "seen"),
    ("kanban_terminal.storage.scan_repo", "ScanStore", "prefetch"),
    ("kanban_terminal.services.signals", None, "record_scan"),
    ("kanban_terminal.services.scanning", None, "decide_scan"),
    ("kanban_terminal.services.scanning", None, "_apply"),
    ("kanban_terminal.storage.scan_repo", "ScanStore", "take_loop_seq"),
    ("kanban_terminal.storage.card_log", "BufferedLog", "append"),
    ("kanban_terminal.storage.card_log", None, "chain_hash"),
    ("kanban_terminal.storage.inbound", "InboundKeys", "record"),
    ("kanban_terminal.runtime.inbound", "InboundWorker", "_before_group_commit"),
    ("kanban_terminal.services.outbox", None, "mark_acknowledged"),
    ("kanban_terminal.storage.outbox", "OutboxWrites", "fresh"),
    ("kanban_terminal.storage.unit_of_work", "UnitOfWork", "flush"),
    ("kanban_terminal.storage.card_log", "BufferedLog", "write"),
    ("kanban_terminal.storage.unit_of_work", "UnitOfWork", "committed"),
)


class Phases:
    """Thread CPU a group by wrapped function (this process's one thread)."""

    def __init__(self, skip: int):
        self.skip = skip
        self.current: collections.Counter[str] = collections.Counter()
        self.groups: dict[str, list[int]] = collections.defaultdict(list)
        self.seen = 0

    def wrap(self, module: str, owner: str | None, name: str) -> None:
        mod = sys.modules[module]
        target: Any = getattr(mod, owner) if owner else mod
        label = f"{owner}.{name}" if owner else name
        inner: Callable[..., Any] = getattr(target, name)
        clock, current = time.thread_time_ns, self.current

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                current[label] += clock() - began

        setattr(target, name, timed)

    def next_group(self, index: int) -> None:
        """Called before group `index`: the last group's sums are kept (after the warm-up)."""
        if index > self.skip:
            for label in {*self.groups, *self.current}:
                self.groups[label].append(self.current.get(label, 0))
        self.current.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    ap.add_argument("--groups", type=int, default=150)
    ap.add_argument("--thrash-mb", type=int, default=64, help="MB written before each group (0: warm)")
    ap.add_argument("--pause-ms", type=float, default=0.0, help="idle before each group")
    args = ap.parse_args()
    root = str(args.root.resolve())
    sys.path.insert(0, str(ROOT))
    from bench import group_cost  # the child's source; it puts `root` first on sys.path itself

    skip = 20
    phases = Phases(skip)
    wraps = "\n".join(f"    PHASES.wrap({m!r}, {o!r}, {n!r})" for m, o, n in PHASES)
    imports = "\n".join(f"    import {m}" for m in sorted({m for m, _, _ in PHASES}))
    make = "    worker = InboundWorker(t, topics)\n"
    timed = "        c0 = time.process_time()\n"
    child = group_cost._CHILD.replace(make, f"{imports}\n{wraps}\n{make}")
    child = child.replace(timed, f"        PHASES.next_group(len(cpu))\n{timed}")
    assert "PHASES.wrap" in child and "PHASES.next_group" in child, "group_cost's child changed"
    os.environ["GROUP_COST_THRASH_MB"] = str(args.thrash_mb)
    os.environ["GROUP_COST_PAUSE_MS"] = str(args.pause_ms)
    sys.argv = ["group_cost child", root, str(args.groups + skip), "0", "1", "passive"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(child, "group_cost child", "exec"), {"__name__": "__main__", "PHASES": phases})
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    cpu = [1e6 * c for c in result["cpu"][skip:]]
    print(
        f"{root}: {len(cpu)} one-signal groups, thrash {args.thrash_mb} MB, pause {args.pause_ms} ms, "
        f"load {os.getloadavg()[0]:.1f}; CPU a group median {statistics.median(cpu):,.0f} us"
    )
    for label, values in sorted(phases.groups.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {label:40s} median {statistics.median(values) / 1e3:8.1f} us a group")


if __name__ == "__main__":
    main()
