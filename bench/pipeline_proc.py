"""The pipelines under test, each in its own process, as a plant runs them.

A terminal is a process of its own (`kanban-terminal serve` or the TUI); the bin sensors and the
upstream system are other programs. Measured inside the bench process, the terminal's threads and the
bench's own publisher and subscriber shared one GIL, and that contention was part of every figure
(the publisher's pacing loop alone wakes a thousand times a second). So both the terminal and the
minimal one-commit-per-signal baseline run here as child processes, and the bench keeps only the
devices' publisher and the upstream subscriber.

    python bench/pipeline_proc.py minimal PORT DB TOPIC_PREFIX   (the baseline; prints "ready")
"""

from __future__ import annotations

import gc
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kanban_terminal.topics import LineTopics  # noqa: E402
from tests.support.mqtt_lines import line_config, wait_for  # noqa: E402

_CREATE = (
    "import sys; from pathlib import Path; from kanban_terminal.config import load_config; "
    "from kanban_terminal.services.terminal import Terminal; "
    "Terminal.open(load_config(Path(sys.argv[1])), Path(sys.argv[2])).close()"
)


@contextmanager
def serving(
    port: int,
    home: Path,
    cards: int,
    line: str,
    *,
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    argv: tuple[str, ...] = ("-m", "kanban_terminal.runtime"),
    existing: bool = False,
    root: Path = ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m kanban_terminal.runtime serve` for a line of `cards` bin sensors
    (BS00001 -> C00001 ...), yielded once it is online: its subscriptions go to the broker before
    its availability message on the same connection, so "online" means subscribed.

    `root` is the source tree to run (another commit's checkout, for a before/after figure).
    `existing` creates the data dir's database in a process of its own first (a restart).
    `prefix` goes before the interpreter (e.g. `taskset -c 0`), `env` replaces the environment
    (e.g. with `LD_PRELOAD` of bench/slow_fsync.c), `argv` replaces the module (a tracer wrapper)."""
    topics = LineTopics("S1", line)
    home.mkdir(parents=True)
    cfg = home / "line.toml"
    cfg.write_text(line_config(loops=(cards + 99) // 100, cards=100, sensors=cards, line=line))
    online = threading.Event()
    watch = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{line}", protocol=mqtt.MQTTv5)

    def on_availability(c: object, u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.retain and json.loads(msg.payload).get("state") == "online":
            online.set()

    watch.on_message = on_availability
    watch.connect("127.0.0.1", port, 30)
    watch.subscribe(topics.terminal_availability(f"{line}-T1"), 1)
    watch.loop_start()
    if existing:
        # A terminal restarts on its own file far more often than it starts on a new one: create
        # the file first (schema at head, cards registered), so "ready" is a restart's.
        subprocess.run(
            [sys.executable, "-c", _CREATE, str(cfg), str(home / "data")], cwd=root, check=True, env=env
        )
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [*prefix, sys.executable, *argv, "serve", "--config", str(cfg),
         "--data-dir", str(home / "data"), "--mqtt", f"mqtt://127.0.0.1:{port}"],
        cwd=root, stdout=log, stderr=log, env=env,
    )  # fmt: skip
    try:
        wait_for(lambda: online.is_set() or proc.poll() is not None, 120, f"serve {line} online")
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {(home / 'serve.log').read_text()[-2000:]}")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
        watch.disconnect()
        watch.loop_stop()


def duplicates_absorbed(home: Path) -> int:
    """Redelivered signals `serve` recognised, from its log ("N signal(s) already applied")."""
    text = (home / "serve.log").read_text(errors="replace")
    return sum(int(n) for n in re.findall(r"(\d+) signal\(s\) already applied", text))


def requests_stored(home: Path) -> int:
    con = sqlite3.connect(f"file:{home / 'data' / 'terminal.db'}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(*) FROM replenishment_request").fetchone()[0])
    finally:
        con.close()


@contextmanager
def minimal(
    port: int,
    db: Path,
    prefix: str,
    *,
    launcher: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The baseline in its own process, yielded once its subscription is granted (`launcher` and
    `env` as `serving`'s `prefix` and `env`)."""
    proc = subprocess.Popen(
        [*launcher, sys.executable, __file__, "minimal", str(port), str(db), prefix],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("minimal pipeline did not start")
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # end of stdin: the worker stops
        proc.wait(30)


def run_minimal(port: int, db_path: Path, prefix: str) -> None:
    """Subscribe, commit signal + outbox row, publish the request: one commit per signal, auto-ack."""
    con = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE s (k TEXT PRIMARY KEY, at TEXT)")
    con.execute("CREATE TABLE o (id INTEGER PRIMARY KEY, body TEXT, state TEXT)")
    worker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-worker", protocol=mqtt.MQTTv5)
    worker.max_inflight_messages_set(1000)
    worker.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        data = json.loads(msg.payload)
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT OR IGNORE INTO s VALUES (?, ?)", (data["id"], data["at"]))
        con.execute("INSERT INTO o (body, state) VALUES (?, 'pending')", (msg.payload,))
        con.execute("COMMIT")
        c.publish(f"{prefix}/requests", json.dumps({"card": data["device"]}), 1)

    worker.on_message = on_message
    worker.on_subscribe = lambda *a: subscribed.set()
    worker.connect("127.0.0.1", port, 30)
    worker.subscribe(f"{prefix}/signals", 1)
    worker.loop_start()
    subscribed.wait(30)
    gc.collect()
    gc.freeze()  # as serve does once started
    print("ready", flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    worker.disconnect()
    worker.loop_stop()
    con.close()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "minimal":
        run_minimal(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(__doc__)
