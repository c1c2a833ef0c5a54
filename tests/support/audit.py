"""An independent audit subscriber: the ground truth the fault suite reconciles against.

It runs as its own process (`python -m tests.support.audit --port P --db F --topic T ...`) with its
own MQTT 5 persistent session (clean_start=False, a long session expiry) and writes every message it
receives to its own SQLite file. It acknowledges a message to the broker only after the row is
committed (manual ack), so a message the broker counts as delivered to the audit is on its disk.
Being a separate process and a separate file, nothing the terminal does (crash, bad commit, bad
dedupe) can change what the audit saw. Duplicates are kept: dedupe is the reconciliation's job.

It must not import the product: it is a witness, not a participant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    n INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    dup INTEGER NOT NULL
)
"""


def _run(port: int, db: Path, topics: list[str], client_id: str) -> int:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(SCHEMA)
    lock = threading.Lock()
    stop = threading.Event()

    def on_connect(client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            print(f"audit: broker refused: {reason}", file=sys.stderr, flush=True)
            return
        result, _mid = client.subscribe([(t, 1) for t in topics])
        print(f"audit: connected, subscribe rc {result}", flush=True)

    def on_subscribe(client: Any, _u: Any, _mid: Any, _codes: Any, _p: Any) -> None:
        print("ready", flush=True)

    def on_message(client: Any, _u: Any, msg: Any) -> None:
        try:
            with lock:
                con.execute(
                    "INSERT INTO message (received_at, topic, payload, qos, retain, dup) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), msg.topic, bytes(msg.payload), msg.qos, int(msg.retain), int(msg.dup)),
                )
            client.ack(msg.mid, msg.qos)  # only after the commit: the audit itself loses nothing
        except Exception as exc:  # the witness must never die on a payload
            print(f"audit: could not store a message: {exc!r}", file=sys.stderr, flush=True)

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )
    client.max_inflight_messages_set(1000)
    client.reconnect_delay_set(1, 1)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 24 * 3600
    client.connect_async("127.0.0.1", port, 5, clean_start=False, properties=props)
    client.loop_start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    client.disconnect()
    client.loop_stop()
    con.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.audit")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--topic", action="append", required=True)
    parser.add_argument("--client-id", default="audit")
    args = parser.parse_args(argv)
    return _run(args.port, args.db, args.topic, args.client_id)


class AuditSubscriber:
    """Start, stop and query the audit process from a test (the process outlives broker restarts)."""

    def __init__(self, port: int, db: Path, topics: list[str], client_id: str = "audit"):
        self.port, self.db, self.topics, self.client_id = port, db, topics, client_id
        self.log = db.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> AuditSubscriber:
        args = [sys.executable, "-m", "tests.support.audit", "--port", str(self.port), "--db", str(self.db)]
        args += ["--client-id", self.client_id]
        for topic in self.topics:
            args += ["--topic", topic]
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while b"ready" not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"audit subscriber did not start: {self.log.read_text()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> AuditSubscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            yield con
        finally:
            con.close()

    def count(self, topic_like: str = "%") -> int:
        if not self.db.exists():
            return 0
        with self._read() as con:
            try:
                row = con.execute("SELECT count(*) FROM message WHERE topic LIKE ?", (topic_like,)).fetchone()
            except sqlite3.OperationalError:  # table not created yet
                return 0
        return int(row[0])

    def messages(self, topic_like: str = "%") -> list[tuple[str, dict[str, Any] | None, bool]]:
        """(topic, parsed JSON or None, dup flag) for every stored message, in arrival order."""
        with self._read() as con:
            rows = con.execute(
                "SELECT topic, payload, dup FROM message WHERE topic LIKE ? ORDER BY n", (topic_like,)
            ).fetchall()
        out: list[tuple[str, dict[str, Any] | None, bool]] = []
        for topic, payload, dup in rows:
            try:
                data = json.loads(payload)
            except ValueError:
                data = None
            out.append((topic, data if isinstance(data, dict) else None, bool(dup)))
        return out


if __name__ == "__main__":
    raise SystemExit(main())
