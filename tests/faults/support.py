"""Shared pieces of the fault suite: processes, the domain-table oracle, signal payloads.

Every wait is a poll with a deadline (`wait_for`); every loop has a count and a time bound.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.topics import LineTopics

ROOT = Path(__file__).resolve().parents[2]
TOPICS = LineTopics("S1", "L1")
DOMAIN_TABLES = ("part", "loop", "card", "card_log", "replenishment_request", "inbound_signal")
"""Everything a rejected input must leave untouched (`rejected_input` is allowed to grow)."""


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (apt-get install -y {package})")
    return path


def env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def serve(
    config: Path,
    data: Path,
    port: int,
    log: Path,
    extra_env: dict[str, str] | None = None,
    *,
    kill_after_commits: int = 0,
) -> subprocess.Popen[bytes]:
    """`python -m kanban_terminal serve`: the headless terminal, as a process that can be killed.

    `kill_after_commits`: run it through tests/support/serve_with_kill.py instead, which SIGKILLs
    the process right after that many signal-group commits, before their acks."""
    out = open(log, "ab")  # noqa: SIM115 - the child keeps its own copy of the descriptor
    launcher = ["-m", "kanban_terminal"]
    if kill_after_commits:
        launcher = ["-m", "tests.support.serve_with_kill", str(kill_after_commits)]
    try:
        return subprocess.Popen(
            [sys.executable, *launcher, "serve", "--config", str(config),
             "--data-dir", str(data), "--mqtt", f"mqtt://127.0.0.1:{port}"],
            env=env() | (extra_env or {}), stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip
    finally:
        out.close()


def driver(
    *args: str, stdin: int | None = None, prefix: list[str] | None = None, stderr: Path | None = None
) -> subprocess.Popen[str]:
    """`tests/faults/driver.py`: scans through `record_scan` in a child process, one line per outcome.

    `stderr`: a file for the child's log when it may be long (a full pipe nobody reads blocks the
    child: seen with 10,000 scans under injected faults)."""
    cmd = [*(prefix or []), sys.executable, str(ROOT / "tests" / "faults" / "driver.py"), *args]
    err = open(stderr, "w") if stderr else subprocess.PIPE  # noqa: SIM115 - the child keeps a copy
    try:
        return subprocess.Popen(
            cmd, env=env(), stdout=subprocess.PIPE, stderr=err, stdin=stdin, text=True, cwd=ROOT
        )
    finally:
        if stderr:
            err.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def integrity(db: Path) -> str:
    return str(query(db, "PRAGMA integrity_check")[0][0])


def domain_digest(db: Path) -> str:
    """SHA-256 over every row of every domain table, in primary-key order: the byte-identical oracle."""
    h = hashlib.sha256()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        for table in DOMAIN_TABLES:
            h.update(table.encode())
            for row in con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):  # noqa: S608
                h.update(repr(row).encode())
    finally:
        con.close()
    return h.hexdigest()


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def signal_payload(device: str, seq: int, kind: str, at: datetime, boot: str = "b1") -> tuple[str, bytes]:
    body = {"v": 1, "id": f"{device}:{boot}:{seq}", "device": device, "boot": boot, "seq": seq}
    body |= {"type": f"bin_{kind}", "at": utc_text(at)}
    return TOPICS.device_signal(device), json.dumps(body).encode()


def signal_at(base: datetime, device_no: int, seq: int) -> datetime:
    """A distinct device timestamp per signal, so each signal's log rows can be found again."""
    return base + timedelta(milliseconds=device_no * 100_000 + seq)
