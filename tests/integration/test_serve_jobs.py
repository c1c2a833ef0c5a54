"""Every job of the terminal works headless: `serve` flags lost cards, escalates andons through
their tiers and records scans from a serial scanner, as the screen does (both run one runtime).

`run_serve` runs in a thread until its stop event is set; the tests read the database file, as an
operator's `kanban-terminal status` would. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.config import SerialScannerSettings, TerminalConfig, demo_config_path, load_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.runtime import RuntimeOptions, run_serve
from kanban_terminal.services.andon import raise_andon
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal, utc_now
from tests.support.andon import FakeClock
from tests.support.mqtt_lines import wait_for

T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)


def rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(f"file:{data_dir / 'terminal.db'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@contextmanager
def serving(
    config: TerminalConfig,
    data_dir: Path,
    *,
    clock: Callable[[], datetime] = utc_now,
    options: RuntimeOptions | None = None,
) -> Iterator[None]:
    """`serve` in a thread (no broker) for the block; it must exit cleanly with 0 afterwards."""
    stop = threading.Event()
    exit_codes: list[int] = []
    kwargs = {"clock": clock, "options": options} if options is not None else {}
    if isinstance(clock, FakeClock):
        kwargs["monotonic"] = clock.monotonic
    thread = threading.Thread(
        target=lambda: exit_codes.append(run_serve(config, data_dir, stop=stop, **kwargs)),  # type: ignore[arg-type]
        name="serve-under-test",
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert exit_codes == [0]


def test_serve_flags_cards_silent_while_their_loop_kept_moving(tmp_path: Path) -> None:
    config = load_config(demo_config_path())
    now = [T0]
    terminal = Terminal.open(config, tmp_path, clock=lambda: now[0])
    head = config.loop("ST10-HEAD").card_id_list()
    for _ in range(10):  # one card of the loop cycles; its loop mates stay silent since March
        now[0] += timedelta(minutes=30)
        record_scan(terminal, head[0], source="keyboard")
    terminal.close()
    # The check runs every few ms here instead of every 5 minutes; the clock is the real one,
    # months after the history above.
    with serving(config, tmp_path, options=RuntimeOptions(lost_card_check_s=0.01)):
        wait_for(lambda: rows(tmp_path, "SELECT count(*) FROM card WHERE state = 'lost'")[0][0] > 0,
                 what="silent cards flagged lost by serve")  # fmt: skip
    lost = {r[0] for r in rows(tmp_path, "SELECT id FROM card WHERE state = 'lost'")}
    assert lost == set(head[1:])
    flagged = rows(tmp_path, "SELECT card_id, source FROM card_log WHERE event = 'flagged_lost'")
    assert {r[0] for r in flagged} == lost and {r[1] for r in flagged} == {"system"}


def test_serve_escalates_an_andon_call_through_its_tiers(tmp_path: Path) -> None:
    config = load_config(demo_config_path())
    clock = FakeClock()
    terminal = Terminal.open(config, tmp_path, clock=clock, monotonic=clock.monotonic)
    raised = raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard")  # 0, 5, 15 min
    assert raised.andon is not None
    terminal.close()

    def tiers() -> list[object]:
        return [r[0] for r in rows(tmp_path, "SELECT tier FROM andon_escalation ORDER BY tier")]

    options = RuntimeOptions(escalation_tick_s=0.01)
    with serving(config, tmp_path, clock=clock, options=options):
        wait_for(lambda: tiers() == [0], what="tier 0 (team lead) at once")
        clock.advance(minutes=5)  # wall and monotonic clock: not early is test_andon_service's part
        wait_for(lambda: tiers() == [0, 1], what="tier 1 (supervisor) after 5 minutes")
        clock.advance(minutes=10)
        wait_for(lambda: tiers() == [0, 1, 2], what="tier 2 (manager) after 15 minutes")
    details = rows(tmp_path, "SELECT detail FROM card_log WHERE event = 'andon_escalated' ORDER BY id")
    assert [d[0] for d in details] == [
        "tier 0: team_lead called", "tier 1: supervisor called", "tier 2: manager called",
    ]  # fmt: skip


@pytest.mark.pty
def test_serve_records_scans_from_a_serial_scanner_on_a_pty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    config = load_config(demo_config_path())
    config = config.model_copy(update={"scanners": (SerialScannerSettings(name="ST10", port=port),)})
    card = config.loop("ST10-HEAD").card_id_list()[0]
    try:
        Terminal.open(config, tmp_path / "data").close()  # migrated before the test reads it
        with serving(config, tmp_path / "data"):
            # pyserial flushes the input when it opens the port: write once the reader has it open.
            wait_for(lambda: "serial scanner ST10: connected" in caplog.text, what="port opened by serve")
            os.write(master, f"]C1{card}\r".encode())
            state = f"SELECT state FROM card WHERE id = '{card}'"
            wait_for(lambda: rows(tmp_path / "data", state) == [("queued",)], what="request raised by serve")
        sources = rows(tmp_path / "data", f"SELECT DISTINCT source FROM card_log WHERE card_id = '{card}'")
        assert ("serial:ST10",) in sources
    finally:
        os.close(master)
        os.close(slave)
