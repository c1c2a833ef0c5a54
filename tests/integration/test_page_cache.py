"""Whole-table walks keep no pages (storage/page_cache.py); the reads of a `serve` start that walk the
whole line use them.

SQLite's own heap is read with `sqlite3_memory_used()` from the library the `sqlite3` module is
linked to: the one number that counts every connection's page cache (issue 19, RSS when ready).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from kanban_terminal.config import TerminalConfig, parse_config
from kanban_terminal.services import runway
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import card_reads, catalog_rows, runway_rows
from kanban_terminal.storage.page_cache import walk_cache
from tests.support.mqtt_lines import line_config


def _sqlite_heap() -> Callable[[], int]:
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("libsqlite3 not found by ctypes (the sqlite3 module is linked statically)")
    used = ctypes.CDLL(name).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return lambda: int(used())


def _file_of(path: Path, rows: int) -> Path:
    """A table of ~`rows` x 250 bytes: far more pages than a 256 KiB cache holds."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        db.executemany("INSERT INTO t (v) VALUES (?)", ((f"{i:0250d}",) for i in range(rows)))
    db.close()
    return path


def test_a_walk_under_the_small_cache_keeps_no_pages_and_gives_the_size_back(tmp_path: Path) -> None:
    used = _sqlite_heap()
    path = _file_of(tmp_path / "big.db", 20_000)  # ~5 MB of pages
    db = sqlite3.connect(path)
    (size,) = db.execute("PRAGMA cache_size").fetchone()
    before = used()
    with walk_cache(db):
        assert db.execute("SELECT count(*), max(v) FROM t").fetchone()[0] == 20_000
    kept_walking = used() - before
    assert db.execute("PRAGMA cache_size").fetchone() == (size,)
    db.execute("SELECT count(*), max(v) FROM t").fetchone()  # the same walk, the connection's own cache
    kept_plainly = used() - before
    db.close()
    # The control shows the figure sees a cache: the plain walk fills the default 2,000 KiB.
    assert kept_plainly > 1_500_000, kept_plainly
    assert kept_walking < 512 * 1024, kept_walking


def _start_reads(data_dir: Path, config: TerminalConfig) -> int:
    """SQLite's heap that a restart's whole-line reads leave: the catalog sync, the runway's first
    read (its bin-empty window), and the health message's (no walk since `healthclock`: a few
    index probes, kept here so it stays one)."""
    used = _sqlite_heap()
    before = used()
    terminal = Terminal.open(config, data_dir)
    try:
        runway.read_facts(terminal, terminal.clock())
        card_reads.health(terminal.db)
        return used() - before
    finally:
        terminal.close()


def test_a_restart_s_whole_line_reads_keep_no_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(line_config(loops=80, cards=100, sensors=0))  # 8,000 cards, all logged
    Terminal.open(config, tmp_path / "data").close()  # the first start registers them
    kept = _start_reads(tmp_path / "data", config)
    for module in (catalog_rows, runway_rows):
        monkeypatch.setattr(module, "walk_cache", lambda sql: contextlib.nullcontext())
    kept_plainly = _start_reads(tmp_path / "data", config)
    # Measured: 0.74 MB kept (the connections' schemas and a few pages each) against 2.79 MB.
    assert kept < 1_200_000, kept
    assert kept_plainly > kept + 1_000_000, (kept_plainly, kept)
