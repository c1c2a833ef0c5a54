"""What a background WAL checkpoint costs per signal, by how many one-signal commits it copies back
(storage/checkpointer.py: `IDLE_S`, `EVERY_COMMITS`; issue 19).

    python bench/checkpoint_every.py [--every 5,10,25,32] [--signals 800] [--rounds 2] [--pause-ms 0]

At a paced rate every signal is a group of one and a commit of its own. The checkpointer copies the
WAL back after `EVERY_COMMITS` commits or `IDLE_S` after the last checkpoint, whichever comes first:
at 5 signals/s, `IDLE_S` = 1, 2, 5, 10 s is a checkpoint every 5, 10, 25, 32 commits (10 s is cut
short by `EVERY_COMMITS` = 32); at 500/s every 32 commits whatever `IDLE_S` is (a second holds more
than 32 commits, unless `serve` groups more than 15 signals a commit).

In-process, one thread, no broker: a 200-loop x 100-card line (20,000 cards, as bench/line_pc.py
`--cards 20000`), `InboundWorker._handle` over one-signal groups with the previous request's PUBACK
mark riding in each (as bench/group_cost.py `--marks`), and every K commits a
`PRAGMA wal_checkpoint(PASSIVE)` from a connection of its own set up as the checkpointer's. Printed
for each K (the settings take turns, `--rounds`, on the same line, so they share the box's minutes;
each round starts with the next K, so none always runs on the longest card log):

* checkpoint CPU per signal (`time.thread_time` around the PRAGMA; the thread's wake-up is not in it,
  and there is one wake-up per checkpoint more at the smaller K);
* WAL frames per checkpoint, and distinct pages among them (what the checkpoint writes into the
  database file: a page written by several commits is copied once), per checkpoint and per signal;
* the writer's CPU per signal (`_handle`), and a reader's (one loop's runway facts, read just before
  each checkpoint, when the WAL is longest: a reader looks each page up in the WAL index first).

`--pause-ms 200` idles before each signal, as at 5/s (cold caches; takes 0.2 s a signal).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kanban_terminal.runtime.inbound import InboundWorker, _Inbound  # noqa: E402
from kanban_terminal.services.outbox import mark_acknowledged  # noqa: E402
from kanban_terminal.services.terminal import Terminal  # noqa: E402
from kanban_terminal.storage import runway_rows  # noqa: E402
from kanban_terminal.topics import LineTopics  # noqa: E402
from tests.support.mqtt_lines import make_config  # noqa: E402


def wal_pages(wal: Path, frames: int, page_size: int) -> set[int]:
    """The page numbers of the WAL's first `frames` frames (each a 24-byte header, page number first)."""
    pages = set()
    with wal.open("rb") as f:
        for i in range(frames):
            f.seek(32 + i * (24 + page_size))
            pages.add(struct.unpack(">I", f.read(4))[0])
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", default="5,10,25,32", help="commits per checkpoint (K)")
    parser.add_argument("--signals", type=int, default=800, help="signals per K and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pause-ms", type=float, default=0.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    every = [int(x) for x in args.every.split(",")]
    total = args.signals * len(every) * args.rounds
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        config, _ = make_config(tmp, loops=200, cards=100, sensors=min(total, 20_000))
        t = Terminal.open(config, tmp / "data")
        try:
            topics = LineTopics(config.site.id, config.line.id)
            worker = InboundWorker(t, topics)
            worker.relay = _MarkingRelay(t)  # type: ignore[assignment]
            at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

            def item(i: int) -> _Inbound:
                dev = f"BS{i % 20_000 + 1:05d}"
                seq = i // 20_000 + 1  # past 20,000 a sensor signals again (its bin is empty)
                p = json.dumps({"v": 1, "id": f"{dev}:b1:{seq}", "device": dev, "boot": "b1", "seq": seq,
                                "type": "bin_empty", "at": at}).encode()  # fmt: skip
                return _Inbound(f"{topics.base}/device/{dev}/signal", p, i, 1, 0)

            cp = sqlite3.connect(t.db.path, isolation_level=None, check_same_thread=False)
            cp.execute("PRAGMA synchronous=FULL")
            cp.execute("PRAGMA wal_autocheckpoint=0")
            page = cp.execute("PRAGMA page_size").fetchone()[0]
            wal = Path(str(t.db.path) + "-wal")
            cp.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            since = datetime.now(UTC).replace(hour=0)
            out: dict[int, dict[str, list[float]]] = {
                k: {"cp": [], "frames": [], "pages": [], "write": [], "read": []} for k in every
            }
            n = 0
            for r in range(args.rounds):
                for k in every[r % len(every) :] + every[: r % len(every)]:  # each K leads a round in turn
                    figures = out[k]
                    for j in range(args.signals):
                        if args.pause_ms:
                            time.sleep(args.pause_ms / 1000)
                        c0 = time.thread_time()
                        worker._handle([item(n)])
                        figures["write"].append(time.thread_time() - c0)
                        n += 1
                        if (j + 1) % k and j + 1 < args.signals:
                            continue
                        loop = config.loops[(n - 1) // 100 % 200].id
                        c0 = time.thread_time()
                        runway_rows.read_facts(t.db, since, loops={loop})
                        figures["read"].append(time.thread_time() - c0)
                        c0 = time.thread_time()
                        _, frames, _ = cp.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        figures["cp"].append(time.thread_time() - c0)
                        figures["frames"].append(frames)
                        figures["pages"].append(len(wal_pages(wal, frames, page)))
            cp.close()
        finally:
            t.close()
    signals = args.signals * args.rounds
    print(
        f"{signals} one-signal commits per K ({args.rounds} rounds, pause {args.pause_ms:g} ms), 20,000-card "
        f"line, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'K':>4}{'cp us/sig':>11}{'cp us/cp':>10}{'frames/cp':>11}{'pages/cp':>10}{'pages/sig':>11}"
          f"{'write us/sig':>14}{'read us':>9}")  # fmt: skip
    base = None
    for k in every:
        f = out[k]
        cp_sig = sum(f["cp"]) / signals * 1e6
        base = base or cp_sig
        print(
            f"{k:>4}{cp_sig:>11.1f}{statistics.median(f['cp']) * 1e6:>10.0f}"
            f"{statistics.mean(f['frames']):>11.1f}{statistics.mean(f['pages']):>10.1f}"
            f"{sum(f['pages']) / signals:>11.2f}{statistics.median(f['write']) * 1e6:>14.0f}"
            f"{statistics.median(f['read']) * 1e6:>9.0f}   cp/sig vs K={every[0]}: {cp_sig / base:.2f}"
        )
    print("(CPU on a shared box: compare within the run; frames and pages do not depend on load)")
    return 0


class _MarkingRelay:
    """What `Relay.join_group` does in a group's unit of work: the previous group's PUBACK marked,
    the fresh request read (bench/group_cost.py `--marks`)."""

    window = 20

    def __init__(self, terminal: Terminal):
        self.terminal = terminal
        self.acked: list[str] = []

    def join_group(self, uow: Any, raised: list[tuple[str, Any]]) -> None:
        acked, self.acked = self.acked, []
        if acked:
            mark_acknowledged(uow, acked, self.terminal.clock())
        if raised:
            uow.outbox.fresh(raised, self.window)
        self.acked = [r for r, _ in raised]


if __name__ == "__main__":
    raise SystemExit(main())
