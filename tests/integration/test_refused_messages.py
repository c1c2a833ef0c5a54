"""Issue 14's measured bad payloads, each through the inbound worker on the demo line: refused with a
reason, nothing changed, and listed by `kanban-terminal rejected` (they used to raise a request or an
andon, or to reach only the service log)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kanban_terminal import cli
from kanban_terminal.config import demo_config_path
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.runtime.inbound import _Inbound
from kanban_terminal.services.refusals import PER_DOOR
from kanban_terminal.topics import LineTopics
from tests.support.terminals import Clock, demo_config, open_terminal

BIN_DEVICE = "BS-ST10-HEAD-1"  # a one-bin device of the demo line
AT = "2026-11-23T05:59:00.000Z"


def bin_signal(**over: object) -> bytes:
    body = {"v": 1, "id": f"{BIN_DEVICE}:b1:1", "device": BIN_DEVICE, "boot": "b1", "seq": 1}
    body |= {"type": "bin_empty", "at": AT, **over}
    return json.dumps(body).encode()


def andon_signal(**over: object) -> bytes:
    body = {"v": 1, "id": "ANDON-ST10:b1:1", "device": "ANDON-ST10", "boot": "b1", "seq": 1}
    body |= {"type": "andon_call", "station": "ST10", "reason": "MACH", **over}
    return json.dumps(body).encode()


def status(request_id: str, **over: object) -> bytes:
    body = {"v": 1, "id": "s-1", "request_id": request_id, "status": "accepted", "at": AT, **over}
    return json.dumps(body).encode()


def counts(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        tables = ("replenishment_request", "andon", "andon_signal", "card_log", "inbound_signal")
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # noqa: S608
    finally:
        con.close()


def rejected(db: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT source, input, reason FROM rejected_input ORDER BY id").fetchall()
    finally:
        con.close()


def test_each_measured_bad_payload_is_refused_kept_and_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config()
    topics = LineTopics(config.site.id, config.line.id)
    terminal = open_terminal(tmp_path, Clock())
    db = terminal.db.path
    try:
        services = TerminalServices(terminal, None)
        # A real request, so the escape-sequence status names a request that exists.
        services.inbound._handle([_Inbound(topics.device_signal(BIN_DEVICE), bin_signal(), 1, 1, 0)])
        request_id = sqlite3.connect(db).execute("SELECT id FROM replenishment_request").fetchone()[0]
        before = counts(db)
        bad = [
            (topics.device_signal(BIN_DEVICE), bin_signal(bin="nosuchbin", seq=2, id=f"{BIN_DEVICE}:b1:2")),
            (topics.device_signal(BIN_DEVICE), bin_signal(id="x", seq=3)),
            (topics.status, status(request_id, id="\x1b[2J")),
            (topics.device_signal("ANDON-ST10"), andon_signal(foo=1)),
            (topics.device_signal(BIN_DEVICE), bin_signal(seq=True)),
        ]
        inbound = [_Inbound(topic, payload, i, 1, 0) for i, (topic, payload) in enumerate(bad)]
        services.inbound._handle(inbound)
        assert counts(db) == before, "a refused message changed state"
        assert services.signals_refused == len(bad) - 1, "the device signals among them"
        rows = rejected(db)
        assert [(source, reason) for source, _, reason in rows] == [
            (f"mqtt:device/{BIN_DEVICE}", f"unknown bin nosuchbin of device {BIN_DEVICE}: see [[bins]]"),
            (f"mqtt:device/{BIN_DEVICE}", "id must be '<device>:<boot>:<seq>' of this message"),
            ("mqtt:status", "id: control, format or escape characters are not allowed"),
            ("mqtt:device/ANDON-ST10", "unknown field foo"),
            (f"mqtt:device/{BIN_DEVICE}", "seq: Input should be a valid integer"),
        ]
        assert not [r for r in rows if "\x1b" in "".join(r)]
        assert "\\\\u001b[2J" in rows[2][1], "the payload is kept, escaped"
    finally:
        terminal.close()
    capsys.readouterr()
    code = cli.main(["rejected", "--config", str(demo_config_path()), "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "No rejected input" not in out
    for reason in ("unknown bin nosuchbin", "id must be", "escape characters", "unknown field foo", "seq:"):
        assert reason in out, reason
    assert "\x1b" not in out


def test_a_flooding_device_keeps_at_most_its_cap(tmp_path: Path) -> None:
    config = demo_config()
    topics = LineTopics(config.site.id, config.line.id)
    terminal = open_terminal(tmp_path, Clock())
    try:
        services = TerminalServices(terminal, None)
        flood = [
            _Inbound(topics.device_signal(BIN_DEVICE), b"junk %d" % i, i, 1, 0) for i in range(3 * PER_DOOR)
        ]
        other = _Inbound(topics.status, b"{}", 0, 1, 0)
        services.inbound._handle([other])
        for start in range(0, len(flood), 256):
            services.inbound._handle(flood[start : start + 256])
        rows = rejected(terminal.db.path)
        assert services.signals_refused == len(flood)
        assert len(rows) == PER_DOOR + 1, "the flooding door is held at its cap"
        assert rows[0][0] == "mqtt:status", "and it pushed out nothing of another door"
        assert rows[-1][1] == f"junk {len(flood) - 1}", "the newest are the ones kept"
    finally:
        terminal.close()
