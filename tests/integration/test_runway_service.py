"""Runway warnings, red cards and quality stops on a real SQLite file (issue 18); the MQTT side through a
real mosquitto with the terminal's one runtime, as `serve` runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.adapters.wire.inbound import RequestMessage
from kanban_terminal.config import TerminalConfig
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.runtime import Runtime, RuntimeOptions
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.outbox import request_payload
from kanban_terminal.services.runway import RunwayMonitor, read_runways
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import runway_rows
from kanban_terminal.storage.tables import RequestRow
from kanban_terminal.topics import LineTopics
from tests.integration.test_andon_mqtt import Listener, handle_andon_signal, signal
from tests.support.andon import OPERATOR, PIN, TEAM_LEAD, FakeClock, demo_config, enrolled, open_terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, publish_raw, settings_for, wait_for

BOLT = "ST10-BOLT"  # 3 cards of 500 from the bolt supplier, 4 h planned lead time; red card R10016
RED = "R10016"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def plant_config() -> TerminalConfig:
    """The demo line with runway warnings on, as a plant runs it (the demo turns the calls off)."""
    cfg = demo_config()
    return cfg.model_copy(update={"runway": cfg.runway.model_copy(update={"warnings": True})})


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, clock, plant_config()))
    yield t
    t.close()


def bolt(terminal: Terminal) -> Any:
    return next(r for r in read_runways(terminal) if r.loop.id == BOLT)


def mat_calls(terminal: Terminal) -> list[Any]:
    return [a for a in read_board(terminal).line.active if a.andon.reason == "MAT"]


def test_a_loop_running_short_warns_once_and_clears_when_it_recovers(
    terminal: Terminal, clock: FakeClock
) -> None:
    cards = terminal.config.loop(BOLT).card_id_list()
    monitor = RunwayMonitor(terminal)
    assert monitor.tick() == []
    assert not bolt(terminal).runway.at_risk
    record_scan(terminal, cards[0], source="keyboard")
    clock.advance(minutes=10)
    record_scan(terminal, cards[1], source="keyboard")
    # One full bin (500) at the planned 208/h lasts 2.4 h; both refills are due in about 4 h.
    assert bolt(terminal).runway.at_risk
    assert monitor.tick() == [f"warning {BOLT}"]
    [call] = mat_calls(terminal)
    assert (call.andon.kind, call.andon.station, call.andon.source) == (AndonKind.CALL, "ST10", "runway")
    assert call.andon.card_id == cards[0]  # the oldest open request: the one to chase
    # Exactly once per episode: more ticks, later ticks, a second monitor raise nothing.
    clock.advance(minutes=5)
    assert monitor.tick() == [] and RunwayMonitor(terminal).tick() == []
    assert len(mat_calls(terminal)) == 1
    [episode] = runway_rows.episodes(terminal.db)
    assert episode.andon_id == call.andon.id and episode.cleared_at is None
    # The refills arrive, but the measured pace (two bins 10 min apart) would use 3 bins in 30 min:
    # still short, the warning stays. Once the pace is back to plan (the burst left the 8 h window),
    # the runway recovers past the deadband, the episode closes and the call is resolved.
    clock.advance(minutes=40)
    assert record_scan(terminal, cards[0], source="keyboard").accepted
    assert record_scan(terminal, cards[1], source="keyboard").accepted
    assert monitor.tick() == [] and bolt(terminal).runway.measured
    clock.advance(hours=8)
    assert monitor.tick() == [f"recovered {BOLT}"]
    assert mat_calls(terminal) == [] or all(a.andon.resolved_at is not None for a in mat_calls(terminal))
    [episode] = runway_rows.episodes(terminal.db)
    assert episode.cleared_at == clock.now
    logged = _log(terminal, "SELECT event, detail FROM card_log WHERE source = 'runway' ORDER BY id")
    assert [e for e, _ in logged] == ["andon_raised", "runway_low", "andon_resolved", "runway_recovered"]
    assert "chase card" in logged[1][1] and "runway back to" in logged[3][1]
    # A new shortage is a new episode: warned again.
    clock.advance(minutes=30)
    record_scan(terminal, cards[0], source="keyboard")
    clock.advance(minutes=5)
    record_scan(terminal, cards[1], source="keyboard")
    assert monitor.tick() == [f"warning {BOLT}"]
    assert len(runway_rows.episodes(terminal.db)) == 2


def test_a_delayed_eta_on_an_open_request_is_used_as_the_promise(
    terminal: Terminal, clock: FakeClock
) -> None:
    """The hook the `delayed` upstream status uses: a later ETA on the request row shortens the runway."""
    cards = terminal.config.loop(BOLT).card_id_list()
    outcome = record_scan(terminal, cards[0], source="keyboard")
    clock.advance(hours=1)
    # 1.6 bins left last 3.8 h at the planned 208/h; the refill due in 3 h makes it 6.2 h.
    assert not bolt(terminal).runway.at_risk
    with terminal.db.unit_of_work() as uow:
        row = uow.session.get(RequestRow, outcome.request_id)
        assert row is not None
        row.eta = clock.now + (row.due_at - clock.now) * 3  # upstream: 12 h instead of 4
        uow.session.add(row)
    assert bolt(terminal).runway.at_risk


def test_red_card_draws_the_reserve_expedites_and_warns(terminal: Terminal, clock: FakeClock) -> None:
    assert bolt(terminal).reserve_full == 1
    outcome = record_scan(terminal, RED, source="keyboard")
    assert outcome.accepted and "RESERVE drawn" in outcome.message
    assert bolt(terminal).reserve_full == 0
    with terminal.db.reading() as session:
        row = session.get(RequestRow, outcome.request_id)
    assert row is not None
    message = RequestMessage.model_validate_json(request_payload(terminal, row))
    assert message.expedite and message.card == RED
    # The runway ignores the reserve: drawing on it neither adds stock nor counts as the loop's pace.
    assert bolt(terminal).runway.on_hand == 2.5 * 500
    assert RunwayMonitor(terminal).tick() == [f"reserve {RED}"]
    [call] = mat_calls(terminal)
    assert call.andon.card_id == RED and call.andon.request_id == outcome.request_id
    assert RunwayMonitor(terminal).tick() == []
    assert _log(terminal, "SELECT count(*) FROM card_log WHERE event = 'reserve_drawn'") == [(1,)]
    # The refill comes (expedited): the reserve is full again and the call is resolved by the system.
    clock.advance(minutes=60)
    assert record_scan(terminal, RED, source="keyboard").accepted
    EscalationRunner(terminal).resolve_supplied_material_andons()
    assert bolt(terminal).reserve_full == 1
    assert all(not a.andon.active for a in mat_calls(terminal))
    # An ordinary card of the loop never asks for expedite.
    normal = record_scan(terminal, terminal.config.loop(BOLT).card_id_list()[0], source="keyboard")
    with terminal.db.reading() as session:
        plain = session.get(RequestRow, normal.request_id)
    assert plain is not None and "expedite" not in json.loads(request_payload(terminal, plain))


def test_anyone_stops_the_line_for_quality_and_a_team_lead_confirms(
    terminal: Terminal, clock: FakeClock
) -> None:
    raised = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "QUAL", source="keyboard", actor=OPERATOR)
    assert raised.ok and raised.andon is not None and read_board(terminal).line.stopped
    andon_id = raised.andon.andon.id
    # Not for any reason: a machine stop still needs a team lead.
    machine = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "MACH", source="keyboard", actor=OPERATOR)
    assert not machine.ok and "team lead" in machine.message
    # An operator cannot confirm it; a team lead's badge can.
    refused = svc.acknowledge_andon(terminal, andon_id, OPERATOR, source="keyboard")
    assert not refused.ok and "team lead" in refused.message
    assert svc.acknowledge_andon(terminal, andon_id, TEAM_LEAD, source="keyboard").ok
    # Releasing the line is a team lead's (badge + PIN), as for every stop.
    assert not svc.resolve_andon(
        terminal, andon_id, "bad lot quarantined", source="keyboard", actor=OPERATOR
    ).ok
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, Rejection)
    done = svc.resolve_andon(
        terminal, andon_id, "bad lot quarantined", source="keyboard", auth=AuthSession(state)
    )
    assert done.ok and not read_board(terminal).line.stopped
    who = _log(
        terminal, f"SELECT event, actor, detail FROM card_log WHERE andon_id = '{andon_id}' ORDER BY id"
    )
    assert [(e, a) for e, a, _ in who] == [
        ("andon_raised", OPERATOR), ("andon_refused", OPERATOR), ("andon_acknowledged", TEAM_LEAD),
        ("andon_refused", OPERATOR), ("andon_resolved", TEAM_LEAD),
    ]  # fmt: skip
    assert "quality stop by anyone, no PIN" in who[0][2]


def test_with_warnings_off_the_episode_is_kept_but_no_call_is_raised(
    tmp_path: Path, clock: FakeClock
) -> None:
    terminal = open_terminal(tmp_path, clock)  # the demo config: `[runway] warnings = false`
    try:
        cards = terminal.config.loop(BOLT).card_id_list()
        record_scan(terminal, cards[0], source="keyboard")
        clock.advance(minutes=10)
        record_scan(terminal, cards[1], source="keyboard")
        assert RunwayMonitor(terminal).tick() == [f"warning {BOLT}"]
        assert mat_calls(terminal) == []
        [episode] = runway_rows.episodes(terminal.db)
        assert episode.andon_id is None
    finally:
        terminal.close()


def test_an_unconfirmed_quality_stop_escalates_at_the_confirm_deadline(
    tmp_path: Path, clock: FakeClock
) -> None:
    cfg = demo_config()
    cfg = cfg.model_copy(update={"quality_stop": cfg.quality_stop.model_copy(update={"confirm_minutes": 2})})
    terminal = open_terminal(tmp_path, clock, cfg)
    try:
        raised = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "QUAL", source="keyboard")
        assert raised.andon is not None
        runner = EscalationRunner(terminal)
        assert [c.tier for c in runner.tick()] == [0]
        clock.advance(minutes=1, seconds=59)
        assert runner.tick() == []
        clock.advance(seconds=1)
        assert [(c.tier, c.role) for c in runner.tick()] == [(1, "supervisor")]  # QUAL's own tier 1: 5 min
        # A QUAL *call* keeps the reason's tiers: the deadline is for stops anyone raised.
        call = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard")
        assert call.ok
        runner.tick()
        clock.advance(minutes=2)
        assert [c.view.andon.id for c in runner.tick()] == []
    finally:
        terminal.close()


def test_quality_stop_needs_the_config(tmp_path: Path, clock: FakeClock) -> None:
    cfg = demo_config()
    cfg = cfg.model_copy(update={"quality_stop": cfg.quality_stop.model_copy(update={"anyone": False})})
    terminal = open_terminal(tmp_path, clock, cfg)
    try:
        refused = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "QUAL", source="keyboard")
        assert not refused.ok and "team lead" in refused.message
        assert not read_board(terminal).line.stopped
    finally:
        terminal.close()


def test_an_andon_button_stops_for_quality_with_no_key(terminal: Terminal) -> None:
    machine = handle_andon_signal(terminal, signal(1, "andon_stop", reason="MACH"))
    assert machine.status == "refused"
    quality = handle_andon_signal(terminal, signal(2, "andon_stop", reason="QUAL"))
    assert quality.status == "raised" and read_board(terminal).line.stopped


@pytest.mark.broker
def test_red_card_and_runway_warning_over_mqtt(
    terminal: Terminal, clock: FakeClock, mosquitto: Mosquitto
) -> None:
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    requests = Recorder(mosquitto.port, topics.requests, client_id="upstream-under-test")
    listener = Listener(mosquitto, [topics.andon])
    runtime = Runtime(terminal, settings_for(mosquitto.port), RuntimeOptions()).start()
    try:
        assert "runway" in runtime.jobs()
        wait_for(runtime.subscribed, what="the terminal's link subscribed")
        drawn = runtime.scan(RED)
        assert drawn.accepted
        # The runway job wakes on the card change: no waiting for its 30 s period.
        event, _ = listener.next(topics.andon, lambda p: p["action"] == "raised" and p["card"] == RED)
        assert (event["kind"], event["reason"], event["station"]) == ("call", "MAT", "ST10")
        cards = terminal.config.loop(BOLT).card_id_list()
        runtime.scan(cards[0])
        clock.advance(minutes=10)
        runtime.scan(cards[1])
        warning, _ = listener.next(topics.andon, lambda p: p["action"] == "raised" and p["card"] == cards[0])
        assert warning["reason"] == "MAT"
        wait_for(lambda: len(requests.ids()) >= 3, what="three requests upstream")
        with_flag = {d["card"]: d.get("expedite", False) for _, d, _ in requests.messages}
        assert with_flag == {RED: True, cards[0]: False, cards[1]: False}
    finally:
        runtime.stop()
        listener.close()
        requests.close()


def _log(terminal: Terminal, sql: str) -> list[tuple[Any, ...]]:
    with terminal.db.snapshot() as raw:
        return list(raw.execute(sql).fetchall())


@pytest.mark.broker
def test_an_ordinary_andon_button_stops_for_quality_over_mqtt(
    terminal: Terminal, mosquitto: Mosquitto
) -> None:
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    listener = Listener(mosquitto, [topics.andon, topics.line_state])
    runtime = Runtime(terminal, settings_for(mosquitto.port)).start()
    try:
        wait_for(runtime.subscribed, what="the terminal's link subscribed")
        button = signal(5, "andon_stop", device="ANDON-ST10", reason="QUAL")  # no key switch
        publish_raw(mosquitto.port, [(topics.device_signal("ANDON-ST10"), json.dumps(button).encode())])
        event, _ = listener.next(topics.andon, lambda p: p["action"] == "raised")
        assert (event["kind"], event["reason"], event["station"]) == ("stop", "QUAL", "ST10")
        listener.next(topics.line_state, lambda p: p["state"] == "stopped")
        # A team lead's badge confirms it: the event goes out as acknowledged.
        assert svc.acknowledge_andon(terminal, event["id"], TEAM_LEAD, source="keyboard").ok
        ack, _ = listener.next(topics.andon, lambda p: p["action"] == "acknowledged")
        assert ack["acknowledged_by"] == TEAM_LEAD
    finally:
        runtime.stop()
        listener.close()
