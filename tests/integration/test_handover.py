"""Shift handover (issue 18, last point): at each shift start of the plant a sheet of what is left
open (andons, loops at risk, suspended and lost cards) is due until the incoming team lead takes it
over with badge + PIN; one card-log row per shift. Shifts are the plant's (Europe/Berlin here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.adapters.wire.outbound import HandoverMessage
from kanban_terminal.config import demo_config_path, parse_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.runtime import Runtime
from kanban_terminal.services.andon import raise_andon
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.handover import acknowledge_handover, acknowledged_by, read_sheet
from kanban_terminal.services.lost_cards import flag_lost
from kanban_terminal.services.queries import read_status
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.suspension import suspend_card
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.log_reads import LogFilter, read_page
from kanban_terminal.topics import LineTopics
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, settings_for, wait_for


def berlin_terminal(tmp_path: Path, clock: FakeClock) -> Terminal:
    text = demo_config_path().read_text().replace("[site]\n", '[site]\ntimezone = "Europe/Berlin"\n', 1)
    return Terminal.open(parse_config(text, "berlin.toml"), tmp_path, clock=clock, monotonic=clock.monotonic)


def lead(terminal: Terminal) -> AuthSession:
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, Rejection), state
    return AuthSession(state)


def test_the_handover_sheet_is_due_each_shift_until_a_team_lead_takes_it_over(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 12, 30, tzinfo=UTC))  # 13:30 CET: the early shift (1)
    terminal = enrolled(berlin_terminal(tmp_path, clock))
    try:
        auth = lead(terminal)
        assert raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard").ok
        bolt = terminal.config.loop("ST10-BOLT").card_id_list()  # 3 cards: 2 waiting is at risk
        for card in bolt[:2]:
            assert record_scan(terminal, card, source="keyboard").accepted
        plate = terminal.config.loop("ST20-PLATE").card_id_list()
        assert suspend_card(terminal, plate[0], source="keyboard", auth=auth, note="cracked").ok
        assert flag_lost(terminal, [plate[1]], source="keyboard") == [plate[1]]

        clock.advance(minutes=45)  # 14:15 CET: the late shift (2) has started
        sheet = read_sheet(terminal)
        assert (sheet.day.isoformat(), sheet.shift) == ("2026-03-02", 2)
        assert sheet.shift_start == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
        assert "from 14:00 Europe/Berlin" in sheet.shift_label
        assert [a.split(" since")[0] for a in sheet.open_andons] == ["CALL ST20 Quality problem"]
        # BOLT: 2 of 3 cards waiting. PLATE: one card suspended and one lost leave a single bin, so
        # its runway is below the margin: the board and `runway` say AT RISK, and so does the sheet.
        assert [r.loop_id for r in sheet.loops_at_risk] == ["ST10-BOLT", "ST20-PLATE"]
        board_at_risk = {r.loop.id for r in read_status(terminal).runways if r.runway.at_risk}
        assert "ST20-PLATE" in board_at_risk
        assert sheet.suspended_cards == (plate[0],) and sheet.lost_cards == (plate[1],)
        assert acknowledged_by(terminal, sheet) is None  # due

        refused = acknowledge_handover(terminal, auth=None, source="keyboard")
        assert not refused.ok and "badge" in refused.message
        taken = acknowledge_handover(terminal, auth=lead(terminal), source="keyboard")
        assert taken.ok, taken.message
        again = acknowledge_handover(terminal, auth=lead(terminal), source="keyboard")
        assert not again.ok and "already took over shift 2 of 2026-03-02" in again.message
        assert acknowledged_by(terminal, read_sheet(terminal)) == TEAM_LEAD

        [row] = read_page(terminal.db, LogFilter(events=("handover_acknowledged",))).entries
        assert row.actor == TEAM_LEAD and row.detail == sheet.summary()
        assert "1 open andons, 2 loops at risk, 1 suspended and 1 lost cards" in row.detail

        clock.advance(hours=8)  # 22:15 CET: the night shift needs its own handover
        assert read_sheet(terminal).shift == 3 and acknowledged_by(terminal, read_sheet(terminal)) is None
    finally:
        terminal.close()


@pytest.mark.broker
def test_a_handover_taken_at_a_running_terminal_goes_upstream(tmp_path: Path, mosquitto: Mosquitto) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 13, 15, tzinfo=UTC))  # 14:15 CET: the late shift
    terminal = enrolled(berlin_terminal(tmp_path, clock))
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    recorder = Recorder(mosquitto.port, topics.handover)
    try:
        with Runtime(terminal, settings_for(mosquitto.port)) as runtime:
            wait_for(runtime.subscribed, what="the terminal's link up")
            assert acknowledge_handover(terminal, auth=lead(terminal), source="keyboard").ok
            wait_for(lambda: recorder.messages, what="the handover upstream")
        [(topic, body, retained)] = recorder.messages
    finally:
        recorder.close()
        terminal.close()
    assert topic == topics.handover and not retained
    HandoverMessage.model_validate(body)  # what docs/schema/handover.json promises
    assert (body["actor"], body["production_day"], body["shift"]) == (TEAM_LEAD, "2026-03-02", 2)
    assert body["shift_start"] == "2026-03-02T13:00:00.000000Z" and body["summary"].startswith("shift 2 of")


def test_the_sheet_lists_the_reserve_drawn_and_the_draw_stops_a_disruption_clock(tmp_path: Path) -> None:
    """A red card scanned late in the early shift is on the late shift's sheet (issue 18: reserve
    draws), and drawing the reserve makes the loop's troubled requests safe (disruption response)."""
    from kanban_terminal.domain.inbound import UpstreamStatus
    from kanban_terminal.services.upstream_status import apply_upstream_status

    clock = FakeClock(datetime(2026, 3, 2, 12, 30, tzinfo=UTC))  # 13:30 CET: the early shift (1)
    terminal = enrolled(berlin_terminal(tmp_path, clock))
    try:
        bolt = terminal.config.loop("ST10-BOLT").card_id_list()[0]
        assert record_scan(terminal, bolt, source="keyboard").accepted
        request_id = read_page(terminal.db, LogFilter(card=bolt)).entries[0].request_id
        assert request_id
        eta = clock() + timedelta(hours=6)
        delayed = UpstreamStatus(
            "a7d31805-a7ad-4bb0-8583-97591b17a486", request_id, "delayed", clock(), eta=eta
        )
        warned = apply_upstream_status(terminal, delayed)
        assert warned.moved, warned
        red = next(iter(terminal.reserve_cards))
        assert record_scan(terminal, red, source="keyboard").accepted

        clock.advance(minutes=45)  # 14:16 CET: the late shift (2)
        sheet = read_sheet(terminal)
        assert len(sheet.reserve_draws) == 1 and sheet.reserve_draws[0].startswith(f"{red} (ST10-BOLT) at ")
        assert "1 reserve draws" in sheet.summary()
        with terminal.db.snapshot() as sql:
            safe = sql.execute("SELECT safe_at FROM replenishment_request WHERE id = ?", (request_id,))
            assert safe.fetchone()[0] is not None, "drawing the reserve stops the disruption clock"
    finally:
        terminal.close()
