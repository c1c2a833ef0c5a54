"""The scan use case on a real SQLite file: durability settings, one transaction, append-only log."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import col, func, select

from kanban_terminal.domain.scans import OutcomeKind, Verdict
from kanban_terminal.services.events import RequestRaised, ScanRecorded
from kanban_terminal.services.queries import card_state, read_status
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.storage.card_log import verify_chain
from kanban_terminal.storage.tables import CardLogRow, RejectedInputRow, RequestRow
from tests.support.terminals import Clock, demo_config, open_terminal

CARD = "B1001Z"


def test_scan_raises_request_durably_in_one_transaction(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    events: list[object] = []
    terminal.bus.subscribe(events.append)
    outcome = record_scan(terminal, CARD, source="keyboard")
    assert outcome.verdict is Verdict.ACCEPTED and outcome.kind is OutcomeKind.REQUEST_RAISED
    assert outcome.part_description == "Hex bolt M8x30" and outcome.point_of_use == "ST10 rack A1"
    terminal.close()
    # A second process (a fresh connection) sees card, log rows and request: all committed.
    db = sqlite3.connect(tmp_path / "terminal.db")
    assert db.execute("SELECT state, open_request_id FROM card WHERE id=?", (CARD,)).fetchone() == (
        "queued",
        outcome.request_id,
    )
    assert db.execute(
        "SELECT event FROM card_log WHERE card_id=? AND event != 'registered' ORDER BY id", (CARD,)
    ).fetchall() == [("bin_empty",), ("request_raised",)]
    row = db.execute(
        "SELECT loop_seq, quantity, publish_state, raised_at, due_at FROM replenishment_request WHERE id=?",
        (outcome.request_id,),
    ).fetchone()
    assert row[:3] == (1, 500, "pending")
    assert row[3] == "2026-11-23T06:00:00.000000Z" and row[4] == "2026-11-23T10:00:00.000000Z"
    assert [type(e) for e in events][:1] == [ScanRecorded]
    assert any(isinstance(e, RequestRaised) and e.request_id == outcome.request_id for e in events)


def test_durability_settings_are_live(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    with terminal.db.write_connection() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    assert stat.S_IMODE((tmp_path / "terminal.db").stat().st_mode) == 0o600
    terminal.close()


def test_data_dir_and_database_are_private_when_created(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    terminal = open_terminal(data, Clock())
    terminal.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "terminal.db").stat().st_mode) == 0o600


def test_card_log_rejects_update_and_delete(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    record_scan(terminal, CARD, source="keyboard")
    terminal.close()
    db = sqlite3.connect(tmp_path / "terminal.db")
    for sql in ("UPDATE card_log SET detail = 'edited'", "DELETE FROM card_log"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)


def test_database_refuses_a_second_open_request_for_a_card(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    first = record_scan(terminal, CARD, source="keyboard")
    terminal.close()
    db = sqlite3.connect(tmp_path / "terminal.db")
    cols = (
        "card_id, loop_id, loop_seq, part_number, quantity, station, point_of_use, source, raised_at, due_at"
    )
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            f"INSERT INTO replenishment_request (id, {cols}, status, publish_state, publish_count) "
            f"SELECT 'dup', {cols}, 'queued', 'pending', 0 FROM replenishment_request WHERE id = ?",
            (first.request_id,),
        )


def test_full_cycle_measures_real_lead_time(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    raised = record_scan(terminal, CARD, source="keyboard")
    clock.advance(minutes=250)
    delivered = record_scan(terminal, CARD, source="keyboard")
    assert delivered.kind is OutcomeKind.DELIVERED and delivered.request_id == raised.request_id
    with terminal.db.reading() as s:
        req = s.get(RequestRow, raised.request_id)
        assert req is not None and req.status == "delivered" and req.lead_time_s == 250 * 60
    assert card_state(terminal, CARD) == "in_use"
    assert read_status(terminal).open_requests == ()


def test_guard_rails_write_nothing(tmp_path: Path) -> None:
    clock = Clock()
    terminal = open_terminal(tmp_path, clock)
    record_scan(terminal, CARD, source="keyboard")
    before = _log_count(terminal)
    clock.advance(seconds=1)
    assert record_scan(terminal, CARD, source="keyboard").kind is OutcomeKind.DEBOUNCED
    clock.advance(seconds=60)  # 1 min after a request with 4 h lead time: implausible
    assert record_scan(terminal, CARD, source="keyboard").kind is OutcomeKind.NEEDS_CONFIRMATION
    assert _log_count(terminal) == before
    assert record_scan(terminal, CARD, source="cli", confirmed=True).kind is OutcomeKind.DELIVERED


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("B1001Y", OutcomeKind.MISREAD),
        ("B10", OutcomeKind.MISREAD),
        ("B1001ZB1001Z", OutcomeKind.MISREAD),
        ("\x1b[2J\x1b]0;pwned\x07", OutcomeKind.MISREAD),
        ("", OutcomeKind.MISREAD),
    ],
)
def test_bad_input_is_rejected_kept_escaped_and_changes_nothing(
    tmp_path: Path, raw: str, kind: OutcomeKind
) -> None:
    terminal = open_terminal(tmp_path, Clock())
    before = _domain_dump(tmp_path)
    outcome = record_scan(terminal, raw, source="keyboard")
    assert outcome.verdict is Verdict.REJECTED and outcome.kind is kind
    assert "\x1b" not in outcome.message and "\x1b" not in outcome.code
    assert _domain_dump(tmp_path) == before
    with terminal.db.reading() as s:
        kept = s.exec(select(RejectedInputRow)).all()
    assert len(kept) == 1 and "\x1b" not in kept[0].input and kept[0].reason == outcome.message


def test_unknown_card_with_valid_check_says_it_is_not_registered(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    from kanban_terminal.domain.card_ids import generated_card_id

    outcome = record_scan(terminal, generated_card_id("X99", 1), source="keyboard")
    assert outcome.kind is OutcomeKind.UNKNOWN_CARD and "not registered on line L1" in outcome.message


def test_a_removed_card_is_retired_not_deleted(tmp_path: Path) -> None:
    terminal = open_terminal(tmp_path, Clock())
    record_scan(terminal, CARD, source="keyboard")
    terminal.close()
    cfg = demo_config()
    smaller = cfg.model_copy(update={"loops": cfg.loops[1:]})
    terminal = open_terminal(tmp_path, Clock(), smaller)
    retired = record_scan(terminal, CARD, source="keyboard")  # said "Unknown card" before issue 17
    assert retired.kind is OutcomeKind.NOT_ALLOWED and f"Card {CARD} is retired on line" in retired.message
    with terminal.db.reading() as s:
        assert s.exec(text("SELECT retired FROM card WHERE id = :c"), params={"c": CARD}).scalar() == 1


scans = st.lists(
    st.tuples(
        st.sampled_from(["B1001Z", "B1002X", "B2001R", "junk", "B1001Y"]),
        st.integers(0, 20_000),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scans)
def test_any_scan_sequence_keeps_one_open_request_per_card_and_one_log_row_per_transition(
    tmp_path_factory: pytest.TempPathFactory, seq: list[tuple[str, int, bool]]
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    clock = Clock()
    terminal = open_terminal(folder, clock)
    registered = _log_count(terminal)
    expected_rows = 0
    for code, gap, confirmed in seq:
        clock.advance(seconds=gap)
        outcome = record_scan(terminal, code, source="keyboard", confirmed=confirmed)
        expected_rows += {OutcomeKind.REQUEST_RAISED: 2, OutcomeKind.DELIVERED: 1, OutcomeKind.FOUND: 1}.get(
            outcome.kind, 0
        )
    with terminal.db.reading() as s:
        per_card = s.exec(
            select(RequestRow.card_id, func.count())
            .where(col(RequestRow.closed_at).is_(None))
            .group_by(col(RequestRow.card_id))
        ).all()
        rows = s.exec(select(CardLogRow).order_by(col(CardLogRow.id))).all()
    assert all(n == 1 for _, n in per_card)
    assert len(rows) - registered == expected_rows
    assert verify_chain(rows, terminal.db.log_key).ok
    terminal.close()


def _log_count(terminal: object) -> int:
    with terminal.db.reading() as s:  # type: ignore[attr-defined]
        return int(s.exec(select(func.count()).select_from(CardLogRow)).one())


def _domain_dump(folder: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(folder / "terminal.db")
    out: list[tuple[object, ...]] = []
    for table in ("card", "card_log", "replenishment_request", "loop", "part"):
        out += db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    db.close()
    return out


def test_config_changes_register_retire_and_move_cards_with_an_intact_log(tmp_path: Path) -> None:
    from kanban_terminal.config import parse_config
    from tests.support.mqtt_lines import line_config

    def cards_after_opening(loops: int, cards: int) -> dict[str, tuple[str, int]]:
        terminal = open_terminal(tmp_path, Clock(), parse_config(line_config(loops=loops, cards=cards)))
        with terminal.db.reading() as s:
            rows = s.exec(text("SELECT id, loop_id, retired FROM card")).all()
            assert verify_chain(
                s.exec(select(CardLogRow).order_by(col(CardLogRow.id))).all(), terminal.db.log_key
            ).ok
            registered = s.exec(text("SELECT count(*) FROM card_log WHERE event = 'registered'")).scalar()
        terminal.close()
        assert registered == 6, "each card is registered once, however often the config changes"
        return {card: (loop, retired) for card, loop, retired in rows}

    assert cards_after_opening(loops=2, cards=3) == {
        **{f"C0000{i}": ("LP0", 0) for i in (1, 2, 3)},
        **{f"C0000{i}": ("LP1", 0) for i in (4, 5, 6)},
    }
    dropped = cards_after_opening(loops=1, cards=3)  # loop LP1 left the config
    assert {card for card, (_, retired) in dropped.items() if retired} == {"C00004", "C00005", "C00006"}
    moved = cards_after_opening(loops=1, cards=6)  # ... and its cards came back in loop LP0
    assert moved == {f"C0000{i}": ("LP0", 0) for i in range(1, 7)}
