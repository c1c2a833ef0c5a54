"""`serve` with every SQL statement of its signal groups recorded (bench only, issue 19).

    python bench/same_work_capture.py serve --config FILE --data-dir DIR --mqtt URL
        (as the runtime's main; env SAMEWORK_CAPTURE=PATH: where the groups go, JSON, at exit)

Each sqlite3 connection the process opens is made with a recording factory (`sqlite3.connect`
and `sqlite3.dbapi2.connect` patched before SQLAlchemy opens anything: the pysqlite dialect looks
`connect` up on `sqlite3.dbapi2` at each call), so what is recorded is what reached the driver:
the ORM's and Core's statements, the raw `driver_connection` ones (BEGIN IMMEDIATE, the
busy-timeout PRAGMAs, the signal store's statements), `commit()` and `rollback()`. Only statements
of the thread inside `InboundWorker._handle` are kept, one list a group, with the group's size;
and the requests `serve` published (topic, payload), for the payload's size. bench/same_work.py
replays them; `capture` runs `serve` this way over a few paced signals.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CAPTURE_SIGNALS = 12
"""Signals `capture` sends: the last group is the steady template (with a mark; loop_seq 12)."""

_local = threading.local()
GROUPS: list[dict[str, Any]] = []
PUBLISHED: list[tuple[str, str]] = []


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return {"bytes": bytes(value).hex()}
    return value


def _note(method: str, sql: str | None, params: Any) -> None:
    group = getattr(_local, "group", None)
    if group is None:
        return
    if method == "executemany":
        params = [[_plain(v) for v in row] for row in params]
    elif isinstance(params, dict):
        params = {k: _plain(v) for k, v in params.items()}
    elif params is not None:
        params = [_plain(v) for v in params]
    group.append([method, sql, params])


class RecordingCursor(sqlite3.Cursor):
    def execute(self, sql: str, params: Any = (), /) -> Any:
        _note("execute", sql, params)
        return super().execute(sql, params)

    def executemany(self, sql: str, params: Any, /) -> Any:
        params = list(params)
        _note("executemany", sql, params)
        return super().executemany(sql, params)


class RecordingConnection(sqlite3.Connection):
    def cursor(self, factory: Any = RecordingCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, params: Any = (), /) -> Any:
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, params: Any, /) -> Any:
        return self.cursor().executemany(sql, params)

    def commit(self) -> None:
        _note("commit", None, None)
        super().commit()

    def rollback(self) -> None:
        _note("rollback", None, None)
        super().rollback()


def install() -> None:
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("factory", RecordingConnection)
        return real_connect(*args, **kwargs)

    sqlite3.connect = connect
    sqlite3.dbapi2.connect = connect  # what SQLAlchemy's dialect imports

    from kanban_terminal.runtime import inbound

    original = inbound.InboundWorker._handle

    def handle(self: inbound.InboundWorker, items: list[Any], inline: bool = False) -> None:
        group: list[list[Any]] = []
        _local.group = group
        try:
            original(self, items, inline)
        finally:
            _local.group = None
            GROUPS.append({"signals": len(items), "inline": inline, "statements": group})

    inbound.InboundWorker._handle = handle  # type: ignore[method-assign]

    import paho.mqtt.client as mqtt

    real_publish = mqtt.Client.publish

    def publish(self: mqtt.Client, topic: str, payload: Any = None, *args: Any, **kwargs: Any) -> Any:
        if topic.endswith("/requests") or "/request" in topic:
            body = payload.decode() if isinstance(payload, bytes | bytearray) else str(payload)
            PUBLISHED.append((topic, body))
        return real_publish(self, topic, payload, *args, **kwargs)

    mqtt.Client.publish = publish  # type: ignore[method-assign]


def main() -> int:
    install()
    from kanban_terminal.runtime import serve

    try:
        return serve.main(sys.argv[1:])
    finally:
        out = os.environ.get("SAMEWORK_CAPTURE")
        if out:
            Path(out).write_text(json.dumps({"groups": GROUPS, "published": PUBLISHED}))


def capture(port: int, home: Path, line: str = "SWCAP", signals: int = CAPTURE_SIGNALS) -> dict[str, Any]:
    """Run the real `serve` under this wrapper over `signals` one-signal groups (5/s: every PUBACK
    is in before the next signal) and return what it recorded, with the devices that signalled."""
    from bench import pipeline_proc
    from bench.fleet import Sink
    from bench.mqtt_pipeline import client, signal_payload
    from kanban_terminal.topics import LineTopics
    from tests.support.mqtt_lines import wait_for

    topics = LineTopics("S1", line)
    out = home / "capture.json"
    env = dict(os.environ, SAMEWORK_CAPTURE=str(out))
    with pipeline_proc.serving(port, home, 100, line, env=env, argv=(__file__,), existing=True):
        sink = Sink(port, topics.requests, f"sink-{line}")
        pub = client(port, f"pub-{line}", inflight=100)
        devices = [f"BS{i:05d}" for i in range(1, signals + 1)]
        for n, device in enumerate(devices, 1):
            # One at a time, each once the one before is upstream: a paced publisher that fell behind
            # on a loaded box caught up with two signals at once, which `serve` rightly took as one
            # group (CI: "want 12 one-signal groups, got [1, 1, 1, 1, 2, ...]").
            pub.publish(topics.device_signal(device), signal_payload(device, 1), 1)
            wait_for(lambda: len(sink.arrived) >= n, 60, "captured requests upstream")  # noqa: B023
            time.sleep(0.2)  # 5/s: every PUBACK is in before the next signal
        pub.disconnect()
        pub.loop_stop()
        sink.close()
    data: dict[str, Any] = json.loads(out.read_text())
    data["devices"] = devices
    return data


if __name__ == "__main__":
    raise SystemExit(main())
