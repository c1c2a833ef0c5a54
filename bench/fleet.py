"""Simulated terminals in worker processes, for the scale figure of bench/mqtt_pipeline.py.

A plant runs one terminal per line PC, so the scale figure runs its terminals in several processes,
not all in the bench process. In one process, 100 `TerminalServices` hold ~1,080 file descriptors
(~11 each: SQLite files, paho's socket and its wake-up socket pair) and paho's network loop uses
`select()`, which cannot watch a descriptor >= 1024 (FD_SETSIZE): every link opened past that point
failed with "filedescriptor out of range in select()", which paho takes for a lost connection,
closing the socket before its CONNECT was written and retrying every second, forever, with no error
shown. The bench's own sink and the supermarket peer, opened last, never connected.

Worker protocol (one JSON object per line on stdout; commands on stdin):

    worker -> {"ready": true, "fds": ..., "max_fd": ..., "threads": ...}   every link subscribed
    parent -> {"go": <time.monotonic() of the first second>, "seconds": ..., "total": ...}
    worker -> {"done": true, "sent": {"L3/C00001": <time.monotonic()>, ...}, "errors": [...],
               "cpu_s": <CPU used while scanning>, "late_s": <worst scan start behind its
               schedule>, "reconnects": <link reconnections of its terminals>}
    parent -> {"stop": true}                  (once upstream has everything; the worker then exits)

Times are `time.monotonic()`: CLOCK_MONOTONIC, one clock for the whole machine on Linux, so a send
time taken in a worker and an arrival time taken in the bench are comparable (perf_counter is not
promised to be). Run as `python bench/fleet.py --port P --data-dir D --first K --count N`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat: the box, other users included."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def fd_usage() -> tuple[int, int]:
    """(open descriptors, highest descriptor) of this process: select() fails at 1024."""
    fds = [int(f) for f in os.listdir("/proc/self/fd")]
    return len(fds), max(fds)


# -- the worker (child process) -----------------------------------------------------------------------


def _send(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _read_command() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("bench went away")
    result: dict[str, Any] = json.loads(line)
    return result


def run_worker(port: int, data_dir: Path, first: int, count: int, cards: int) -> None:
    """Host terminals L{first}..L{first+count-1}; raise one request per second each when told."""
    from kanban_terminal.config import parse_config
    from kanban_terminal.domain.scans import Intent
    from kanban_terminal.runtime import TerminalServices
    from kanban_terminal.services.scanning import record_scan
    from kanban_terminal.services.terminal import Terminal
    from tests.support.mqtt_lines import line_config, settings_for

    settings = settings_for(port)
    fleet = []
    for k in range(first, first + count):
        cfg = parse_config(line_config(loops=1, cards=cards, sensors=0, line=f"L{k}"))
        terminal = Terminal.open(cfg, data_dir / f"t{k}")
        fleet.append((k, terminal, TerminalServices(terminal, settings).start()))
    deadline = time.monotonic() + 60
    while not all(s.subscribed() for _, _, s in fleet):
        if time.monotonic() > deadline:
            down = [f"L{k}" for k, _, s in fleet if not s.subscribed()]
            raise SystemExit(f"links not subscribed within 60 s: {down}")
        time.sleep(0.02)
    fds, max_fd = fd_usage()
    _send({"ready": True, "fds": fds, "max_fd": max_fd, "threads": threading.active_count()})

    go = _read_command()
    t0, seconds, total = float(go["go"]), int(go["seconds"]), int(go["total"])
    # Line PCs are not synchronised: terminal k scans at phase k/total of every second, so the
    # fleet's 100 requests per second arrive spread over the second, not as one burst.
    plan = sorted(
        (t0 + s + k / total, s + 1, k, terminal)
        for s in range(seconds)
        for k, terminal, _ in fleet
    )  # fmt: skip
    sent: dict[str, float] = {}
    errors: list[str] = []
    cpu0 = cpu_s()
    late = 0.0
    for due, second, k, terminal in plan:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        card = f"C{second:05d}"
        at = time.monotonic()
        late = max(late, at - due)
        try:
            record_scan(terminal, card, source="bench", intent=Intent.EMPTY)
        except Exception as exc:  # reported, not hidden: a raised request that failed is not counted
            errors.append(f"L{k}/{card}: {exc!r}")
            continue
        sent[f"L{k}/{card}"] = at
    # A link that reconnected during the run (a keepalive missed on a busy box, say) shows here.
    reconnects = sum(max(0, s.link.generation - 1) for _, _, s in fleet if s.link is not None)
    _send(
        {
            "done": True,
            "sent": sent,
            "errors": errors,
            "cpu_s": cpu_s() - cpu0,
            "late_s": late,
            "reconnects": reconnects,
        }
    )

    _read_command()  # stop: upstream has every request (or the bench gave up waiting)
    for _, terminal, services in fleet:
        services.stop()
        terminal.close()


# -- the bench side -----------------------------------------------------------------------------------


class Worker:
    """One worker process and a thread that reads its stdout lines into a queue."""

    def __init__(self, port: int, data_dir: Path, first: int, count: int, cards: int):
        self.first, self.count = first, count
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", str(port),
             "--data-dir", str(data_dir), "--first", str(first), "--count", str(count),
             "--cards", str(cards)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def expect(self, key: str, timeout: float) -> dict[str, Any]:
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"worker L{self.first}+{self.count}: no {key!r} within {timeout} s") from None
        if msg is None or key not in msg:
            raise RuntimeError(
                f"worker L{self.first}+{self.count} exited (rc {self.proc.poll()}) before {key!r}"
            )
        return msg

    def tell(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> None:
        try:
            self.tell({"stop": True})
            self.proc.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def start_fleet(port: int, data_dir: Path, terminals: int, processes: int, cards: int) -> list[Worker]:
    """Start `processes` workers hosting `terminals` terminals between them (as even as can be)."""
    processes = max(1, min(processes, terminals))
    workers, first = [], 0
    for i in range(processes):
        count = terminals // processes + (i < terminals % processes)
        workers.append(Worker(port, data_dir, first, count, cards))
        first += count
    return workers


class Sink:
    """An independent subscriber: first arrival (time.monotonic()) of each line/card request."""

    def __init__(self, port: int, topic: str, client_id: str):
        self.n = 0
        self.arrived: dict[str, float] = {}
        self._subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"sink {client_id} not subscribed within 10 s")

    def _on(self, c: object, u: object, msg: mqtt.MQTTMessage) -> None:
        at = time.monotonic()
        self.n += 1
        try:
            card = json.loads(msg.payload).get("card")
        except ValueError:
            return
        parts = msg.topic.split("/")
        line = parts[3] if len(parts) > 3 else ""
        self.arrived.setdefault(f"{line}/{card}", at)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--cards", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    run_worker(args.port, args.data_dir, args.first, args.count, args.cards)


if __name__ == "__main__":
    main()
