"""A wall-clock step during a line stop changes neither its recorded downtime nor what is shown of it.

A STOP is raised, NTP steps the wall clock +1 h (or -1 h) while 4 minutes pass on the monotonic
clock, and a team lead resolves it. Before, the card log's `downtime_s`, the detail text and the
published `resolved` message all said 3,840 s (or 0). With the andon's elapsed anchor (written by the
escalation runner, kept until the stop ends) every door records 240 s: the service the screen and
the inbound worker call, the CLI in its own terminal, and the real runtime publishing to a real
broker. Without an anchor (no runtime ever ran), or with one of another boot saved at the raise, the
wall difference is what there is, as before. Real SQLite files throughout; FakeClock moves both
clocks (tests/support/andon.py).
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.runtime import Runtime, RuntimeOptions
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon import AndonChanged
from kanban_terminal.services.andon_publishing import andon_event_payload
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, login
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.reports import read_andon_records
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import elapsed_anchors
from kanban_terminal.storage.tables import CardLogRow, ElapsedAnchorRow
from kanban_terminal.topics import LineTopics
from tests.integration.test_andon_mqtt import Listener
from tests.support.andon import PIN, T0, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import settings_for, wait_for

STOP_S = 240
"""Four minutes on the monotonic clock: what the stop really lasted."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path / "data", clock))
    yield t
    t.close()


def team_lead(terminal: Terminal) -> AuthSession:
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, Rejection), state
    return AuthSession(state)


def raise_stop(terminal: Terminal) -> str:
    outcome = svc.raise_andon(
        terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=team_lead(terminal)
    )
    assert outcome.ok and outcome.andon is not None, outcome.message
    return outcome.andon.id


def four_minutes_with_a_step(clock: FakeClock, hours: float) -> None:
    clock.advance(minutes=2)
    clock.step_wall(hours=hours)  # NTP, a person, a DST mistake: only the wall clock moves
    clock.advance(minutes=2)


def resolved_row(terminal: Terminal) -> CardLogRow:
    with terminal.db.reading() as s:
        rows = s.exec(select(CardLogRow).where(CardLogRow.event == "andon_resolved")).all()
    assert len(rows) == 1
    return rows[0]


def anchor_keys(terminal: Terminal) -> list[str]:
    with terminal.db.reading() as s:
        return sorted(s.exec(select(ElapsedAnchorRow.key).order_by(col(ElapsedAnchorRow.key))).all())


def assert_recorded(terminal: Terminal, andon_id: str, seconds: float) -> None:
    """The log's fact, its words, the board's history and the metrics' record all say `seconds`."""
    row = resolved_row(terminal)
    assert row.andon_id == andon_id
    assert row.downtime_s == seconds
    assert f"downtime {seconds:.0f} s" in row.detail
    board = read_board(terminal)  # resolved but unacknowledged: still listed; else in the history
    shown = [v for v in board.line.active + board.history if v.id == andon_id]
    assert [v.running(terminal.clock()).total_seconds() for v in shown] == [seconds]
    records = read_andon_records(terminal, T0 - timedelta(days=1))
    assert [r.downtime_s(terminal.clock()) for r in records if r.kind == "stop"] == [
        seconds
    ]  # metrics sum the fact


@pytest.mark.parametrize("acknowledged", [False, True], ids=["unacknowledged", "acknowledged"])
@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_a_step_during_a_stop_records_the_elapsed_downtime(
    terminal: Terminal, clock: FakeClock, hours: float, acknowledged: bool
) -> None:
    seen: list[object] = []
    terminal.bus.subscribe(seen.append)
    andon_id = raise_stop(terminal)
    runner = EscalationRunner(terminal)
    runner.tick()  # what `serve` does every second: tier 0 fires, the andon's anchor is written
    if acknowledged:
        # A team lead takes the stop; the runner keeps its anchor until the stop ends (no copy).
        assert svc.acknowledge_andon(terminal, andon_id, TEAM_LEAD, source="keyboard").ok
        runner.tick()
        assert anchor_keys(terminal) == [f"andon:{andon_id}"]
    four_minutes_with_a_step(clock, hours)
    running = [v for v in read_board(terminal).line.active if v.id == andon_id]
    assert [v.running(clock.now, clock.mono).total_seconds() for v in running] == [STOP_S]
    outcome = svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    )
    assert outcome.ok and outcome.andon is not None, outcome.message
    assert_recorded(terminal, andon_id, STOP_S)
    resolved = [e for e in seen if isinstance(e, AndonChanged) and e.action == "resolved"]
    assert [andon_event_payload(terminal, e)["downtime_s"] for e in resolved] == [STOP_S]
    # The runner's anchor goes once the stop is over; resolved but unacknowledged it still waits.
    runner.tick()
    assert anchor_keys(terminal) == ([] if acknowledged else [f"andon:{andon_id}"])
    if not acknowledged:  # acknowledged after the resolve: nothing runs, nothing is kept
        assert svc.acknowledge_andon(terminal, andon_id, TEAM_LEAD, source="keyboard").ok
        runner.tick()
        assert anchor_keys(terminal) == []
        assert_recorded(terminal, andon_id, STOP_S)  # now in the history, with the recorded figure


def test_without_an_anchor_the_wall_difference_is_recorded_as_before(
    terminal: Terminal, clock: FakeClock
) -> None:
    andon_id = raise_stop(terminal)  # no runtime runs: nothing anchors the stop
    four_minutes_with_a_step(clock, 1)
    assert anchor_keys(terminal) == []
    assert svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    ).ok
    assert_recorded(terminal, andon_id, STOP_S + 3600)


def test_an_anchor_of_another_boot_counts_the_wall_time_since_it_was_saved(
    terminal: Terminal, clock: FakeClock
) -> None:
    andon_id = raise_stop(terminal)
    EscalationRunner(terminal, boot_id=lambda: "boot-before").tick()
    stored = elapsed_anchors.load(terminal.db, [f"andon:{andon_id}"])[f"andon:{andon_id}"]
    assert (stored.boot_id, stored.elapsed_s) == ("boot-before", 0.0)
    four_minutes_with_a_step(clock, 1)  # the monotonic clock of that boot means nothing on this one
    assert svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    ).ok
    assert_recorded(terminal, andon_id, STOP_S + 3600)


def test_the_cli_resolving_a_stop_serve_anchored_records_the_elapsed_downtime(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    serving = enrolled(open_terminal(data_dir, clock))
    andon_id = raise_stop(serving)
    EscalationRunner(serving).tick()
    serving.close()
    four_minutes_with_a_step(clock, 1)
    # The CLI opens its own terminal on the same clocks (CLOCK_MONOTONIC is one clock for the boot).
    opened = Terminal.open.__func__  # type: ignore[attr-defined]
    both = {"clock": clock, "monotonic": clock.monotonic}
    monkeypatch.setattr(Terminal, "open", classmethod(lambda cls, *a, **k: opened(cls, *a, **{**k, **both})))
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    common = ["--config", str(demo_config_path()), "--data-dir", str(data_dir)]
    args = ["resolve-andon", andon_id, "--note", "guard refitted", "--badge", TEAM_LEAD, "--pin-stdin"]
    assert main([*args, *common]) == 0, capsys.readouterr().out
    terminal = open_terminal(data_dir, clock)
    try:
        assert_recorded(terminal, andon_id, STOP_S)
    finally:
        terminal.close()


@pytest.mark.broker
@pytest.mark.parametrize("acknowledged", [False, True], ids=["unacknowledged", "acknowledged"])
def test_the_runtime_publishes_the_elapsed_downtime_on_the_broker(
    terminal: Terminal, clock: FakeClock, mosquitto: Mosquitto, acknowledged: bool
) -> None:
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    listener = Listener(mosquitto, [topics.andon])
    options = RuntimeOptions()
    runtime = Runtime(terminal, settings_for(mosquitto.port), options).start()
    try:
        wait_for(runtime.subscribed, what="the terminal's link subscribed")
        andon_id = raise_stop(terminal)
        wait_for(lambda: f"andon:{andon_id}" in anchor_keys(terminal), what="the runtime anchored the stop")
        if acknowledged:  # `serve` keeps its anchor past the acknowledge (it dropped it before onemono)
            assert svc.acknowledge_andon(terminal, andon_id, TEAM_LEAD, source="keyboard").ok
            reads = runtime.escalation.reads  # the acknowledge's event asked for the next tick to read
            wait_for(lambda: runtime.escalation.reads > reads, what="the runtime read the andons again")
            assert anchor_keys(terminal) == [f"andon:{andon_id}"]
        four_minutes_with_a_step(clock, 1)
        assert svc.resolve_andon(
            terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
        ).ok
        event, retained = listener.next(
            topics.andon, lambda p: p["action"] == "resolved" and p["id"] == andon_id
        )
        assert (event["downtime_s"], retained) == (STOP_S, False)
    finally:
        runtime.stop()
        listener.close()
    assert_recorded(terminal, andon_id, STOP_S)
