"""The card log read back: filters and keyset paging, CSV round trip, and the hash chain catching an
edit made behind the database's back."""

from __future__ import annotations

import io
import shutil
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.log_query import (
    LogFilter,
    QueryError,
    card_cycles,
    parse_query,
    read_csv,
    read_page,
    write_csv,
)
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import log_key
from kanban_terminal.storage.db import Database
from tests.integration.conftest import T0, Clock


def make_history(terminal: Terminal, clock: Clock) -> tuple[str, str]:
    """Two cards of two loops each do two full cycles (raise, deliver 30 min later)."""
    head = terminal.config.loop("ST10-HEAD").card_id_list()[0]
    plate = terminal.config.loop("ST20-PLATE").card_id_list()[0]
    for _ in range(2):
        for card in (head, plate):
            clock.advance(minutes=1)
            assert record_scan(terminal, card, source="keyboard", actor="E1001").accepted
        clock.advance(minutes=30)
        for card in (head, plate):
            clock.advance(minutes=1)
            assert record_scan(terminal, card, source="serial:/dev/ttyUSB0").accepted
    return head, plate


def all_ids(terminal: Terminal, flt: LogFilter) -> list[int]:
    return [e.id for e in read_page(terminal.db, flt, limit=10_000).entries]


def test_filters_pick_the_right_rows(open_terminal: Callable[[], Terminal], clock: Clock) -> None:
    terminal = open_terminal()
    head, plate = make_history(terminal, clock)
    newest = read_page(terminal.db, LogFilter(), limit=1000).entries
    assert [e.id for e in newest] == sorted((e.id for e in newest), reverse=True)  # newest first
    by_card = read_page(terminal.db, LogFilter(card=head.lower()), limit=100).entries
    assert by_card and {e.card_id for e in by_card} == {head}
    assert {e.loop_id for e in read_page(terminal.db, LogFilter(part="200-1102")).entries} == {"ST20-PLATE"}
    at_st20 = read_page(terminal.db, LogFilter(station="ST20")).entries
    st20_loops = {lp.id for lp in terminal.config.loops if lp.station == "ST20"}
    assert {e.loop_id for e in at_st20} == st20_loops and plate in {e.card_id for e in at_st20}
    delivered = read_page(terminal.db, LogFilter(events=("delivered",))).entries
    assert len(delivered) == 4 and all("lead time" in e.detail for e in delivered)
    assert {e.source for e in read_page(terminal.db, LogFilter(source="serial:")).entries} == {
        "serial:/dev/ttyUSB0"
    }
    assert {e.actor for e in read_page(terminal.db, LogFilter(actor="E1001")).entries} == {"E1001"}
    since = T0 + timedelta(minutes=40)
    assert all(e.occurred_at >= since for e in read_page(terminal.db, LogFilter(since=since)).entries)
    assert {e.event for e in read_page(terminal.db, LogFilter(text="lead time 19")).entries} == {"delivered"}
    assert read_page(terminal.db, LogFilter(text="100%_")).entries == ()  # LIKE wildcards are literal


def test_keyset_paging_walks_every_row_once_both_ways(
    open_terminal: Callable[[], Terminal], clock: Clock
) -> None:
    terminal = open_terminal()
    make_history(terminal, clock)
    flt = LogFilter(events=("bin_empty", "request_raised", "delivered"))
    expected = all_ids(terminal, flt)
    seen, page = [], read_page(terminal.db, flt, limit=3)
    pages = [page]
    while True:
        seen += [e.id for e in page.entries]
        if not page.has_older:
            break
        page = read_page(terminal.db, flt, before=page.oldest_id, limit=3)
        pages.append(page)
    assert seen == expected and len(pages) == 4
    back = read_page(terminal.db, flt, after=pages[-1].newest_id, limit=3)
    assert back.entries == pages[-2].entries and back.has_newer


def test_parse_query() -> None:
    now = T0
    flt = parse_query("loop:ST20-PLATE event:delivered,bin_empty since:2d late bin", now)
    assert flt.loop == "ST20-PLATE" and flt.events == ("delivered", "bin_empty") and flt.text == "late bin"
    assert flt.since is not None and (now - flt.since).days == 2
    assert parse_query("until:2026-03-01", now).until is not None
    with pytest.raises(QueryError):
        parse_query("since:yesterday", now)


def test_card_cycles_show_each_lead_time(open_terminal: Callable[[], Terminal], clock: Clock) -> None:
    terminal = open_terminal()
    head, _ = make_history(terminal, clock)
    cycles = card_cycles(terminal.db, head)
    assert len(cycles) == 2 and all(c.lead_time_s == 32 * 60 and c.on_time for c in cycles)


def test_csv_export_round_trips(open_terminal: Callable[[], Terminal], clock: Clock) -> None:
    terminal = open_terminal()
    make_history(terminal, clock)
    card = terminal.config.loop("ST30-DISC").card_id_list()[0]
    # A source that a spreadsheet would run as a formula must come back exactly as stored.
    record_scan(terminal, card, source='=HYPERLINK("x")\x1b[2J')
    out = io.StringIO()
    count = write_csv(terminal.db, LogFilter(), out)
    text = out.getvalue()
    assert "\x1b" not in text and "'=HYPERLINK" in text
    back = list(read_csv(io.StringIO(text)))
    stored = read_page(terminal.db, LogFilter(), limit=10_000).entries
    assert len(back) == count == len(stored)
    for row, entry in zip(back, stored, strict=True):
        assert row["id"] == str(entry.id)
        assert row["hash"] == entry.hash and row["detail"] == entry.detail and row["source"] == entry.source
        assert row["card_id"] == entry.card_id and row["andon_id"] is None
    assert back[0]["source"] == '=HYPERLINK("x")\\x1b[2J'


def test_chain_names_the_edited_row(
    open_terminal: Callable[[], Terminal], clock: Clock, tmp_path: Path
) -> None:
    terminal = open_terminal()
    make_history(terminal, clock)
    assert verify_log(terminal.db).ok
    victim = read_page(terminal.db, LogFilter(events=("delivered",)), limit=1).entries[0].id
    terminal.close()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "data", copy)
    with sqlite3.connect(copy / "terminal.db") as conn:
        # What someone with the file would do: drop the append-only guard and "fix" a lead time.
        conn.execute("DROP TRIGGER card_log_no_update")
        conn.execute("UPDATE card_log SET detail = 'lead time 60 s' WHERE id = ?", (victim,))
    # The copy carries the terminal's key file: its rows are keyed (HMAC) and checked with it.
    db = Database(copy / "terminal.db", log_key=log_key.load(copy / log_key.KEY_FILENAME))
    try:
        report = verify_log(db)
    finally:
        db.close()
    assert not report.ok and report.first_broken_id == victim
    cfg = str(demo_config_path())
    assert main(["verify-log", "--config", cfg, "--data-dir", str(tmp_path / "data")]) == 0
    assert main(["verify-log", "--config", cfg, "--data-dir", str(copy)]) == 1


def test_export_cli(open_terminal: Callable[[], Terminal], clock: Clock, tmp_path: Path) -> None:
    terminal = open_terminal()
    make_history(terminal, clock)
    terminal.close()
    out = tmp_path / "plate.csv"
    cfg = str(demo_config_path())
    assert main(["export", "--config", cfg, "--data-dir", str(tmp_path / "data"), "--loop", "ST20-PLATE",
                 "--out", str(out)]) == 0  # fmt: skip
    rows = list(read_csv(out.open(encoding="utf-8")))
    assert rows and {r["loop_id"] for r in rows} == {"ST20-PLATE"}
