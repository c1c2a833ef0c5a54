"""A wall-clock step between a CALL's raise and its acknowledge bends neither its response times nor
its duration (migration 0012, the log's `elapsed_s`).

A material CALL (reason MAT) is raised and anchored (the escalation runner's tick, as `serve` does
every second); 2 minutes pass on the monotonic clock with a +1 h (or -1 h) NTP step in them; someone
acknowledges; 2 more minutes pass and it is resolved. Before, metrics' material response said
"acknowledged p50 1 h 02 min, material at the line 1 h 04 min" (or 0 s) and the andon screen's history
"1 h 04 min": they compared the stored wall times. Now every door reads the seconds the acknowledge
and the resolve recorded from the andon's anchor: the log's rows, the board's history, the metrics
records, `metrics --json`, its text and the CSV export (the CLI in its own terminal), and a runtime
serving a real broker (its published steps carry `elapsed_s`). A cancel records its figure likewise.
Without an anchor (no runtime ran since the raise) the wall difference is what there is, as before;
the chain stays intact either way. Real SQLite files throughout; FakeClock moves both clocks
(tests/support/andon.py).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.runtime import Runtime, RuntimeOptions
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon import AndonChanged
from kanban_terminal.services.andon_publishing import andon_event_payload
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.log_query import read_csv
from kanban_terminal.services.reports import read_andon_records
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.log_reads import verify_chain_of
from kanban_terminal.storage.tables import CardLogRow
from kanban_terminal.topics import LineTopics
from tests.integration.test_andon_mqtt import Listener
from tests.integration.test_stop_downtime_steps import anchor_keys, raise_stop, team_lead
from tests.support.andon import PIN, SUPERVISOR, T0, TEAM_LEAD, FakeClock, enrolled, open_terminal
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import settings_for, wait_for

ACK_S, END_S = 120, 240
"""Raise to acknowledge and raise to resolve on the monotonic clock: what the call really took."""
HOUR = 3600


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One clock for the test's terminals and every terminal the CLI opens (CLOCK_MONOTONIC is one
    clock for every process of a boot, and the wall clock is the machine's)."""
    clock = FakeClock()
    opened = Terminal.open.__func__  # type: ignore[attr-defined]

    def open_on_clock(cls: type[Terminal], *args: Any, **kwargs: Any) -> Terminal:
        return opened(cls, *args, **{**kwargs, "clock": clock, "monotonic": clock.monotonic})  # type: ignore[no-any-return]

    monkeypatch.setattr(Terminal, "open", classmethod(open_on_clock))
    return clock


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path / "data", clock))
    yield t
    t.close()


def raise_call(terminal: Terminal) -> str:
    outcome = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "MAT", source="keyboard")
    assert outcome.ok and outcome.andon is not None, outcome.message
    return outcome.andon.id


def two_minutes_with_a_step(clock: FakeClock, hours: float) -> None:
    clock.advance(minutes=1)
    clock.step_wall(hours=hours)  # NTP, a person, a DST mistake: only the wall clock moves
    clock.advance(minutes=1)


def acknowledge(terminal: Terminal, andon_id: str) -> None:
    assert svc.acknowledge_andon(terminal, andon_id, SUPERVISOR, source="keyboard").ok


def resolve(terminal: Terminal, andon_id: str) -> None:
    assert svc.resolve_andon(terminal, andon_id, "bins brought", source="keyboard", actor=SUPERVISOR).ok


def elapsed_logged(terminal: Terminal, andon_id: str) -> dict[str, float | None]:
    """Each step's `elapsed_s` fact, by event."""
    with terminal.db.reading() as s:
        rows = s.exec(
            select(CardLogRow.event, CardLogRow.elapsed_s)
            .where(CardLogRow.andon_id == andon_id, CardLogRow.event != "andon_escalated")
            .order_by(col(CardLogRow.id))
        ).all()
    return {event.removeprefix("andon_"): elapsed for event, elapsed in rows}


def assert_response(terminal: Terminal, andon_id: str, ack_s: float, end_s: float) -> None:
    """The board's history and the metrics' record say `ack_s` and `end_s`; the chain holds."""
    board = read_board(terminal)
    shown = [v for v in board.history if v.id == andon_id]
    assert [v.running(terminal.clock()).total_seconds() for v in shown] == [end_s]
    [record] = read_andon_records(terminal, T0 - timedelta(days=1))
    assert (record.to_acknowledge_s(), record.to_end_s()) == (ack_s, end_s)
    assert verify_chain_of(terminal.db).ok


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_a_step_between_raise_and_acknowledge_records_the_elapsed_response(
    terminal: Terminal, clock: FakeClock, hours: float
) -> None:
    seen: list[object] = []
    terminal.bus.subscribe(seen.append)
    andon_id = raise_call(terminal)
    EscalationRunner(terminal).tick()  # what `serve` does every second: the call's anchor is written
    two_minutes_with_a_step(clock, hours)
    acknowledge(terminal, andon_id)
    clock.advance(minutes=2)
    resolve(terminal, andon_id)
    assert elapsed_logged(terminal, andon_id) == {"raised": None, "acknowledged": ACK_S, "resolved": END_S}
    assert_response(terminal, andon_id, ACK_S, END_S)
    published = {e.action: andon_event_payload(terminal, e) for e in seen if isinstance(e, AndonChanged)}
    assert (published["acknowledged"]["elapsed_s"], published["resolved"]["elapsed_s"]) == (ACK_S, END_S)
    assert "elapsed_s" not in published["raised"]


def test_a_cancel_after_a_step_records_the_elapsed_time(terminal: Terminal, clock: FakeClock) -> None:
    andon_id = raise_call(terminal)
    EscalationRunner(terminal).tick()
    two_minutes_with_a_step(clock, 1)
    assert svc.cancel_andon(terminal, andon_id, source="keyboard").ok  # the raiser's own door
    assert elapsed_logged(terminal, andon_id) == {"raised": None, "cancelled": ACK_S}
    [shown] = [v for v in read_board(terminal).history if v.id == andon_id]
    assert shown.running(clock.now).total_seconds() == ACK_S
    assert verify_chain_of(terminal.db).ok


def test_without_an_anchor_the_wall_difference_counts_as_before(terminal: Terminal, clock: FakeClock) -> None:
    andon_id = raise_call(terminal)  # no runtime runs: nothing anchors the call
    two_minutes_with_a_step(clock, 1)
    acknowledge(terminal, andon_id)
    clock.advance(minutes=2)
    resolve(terminal, andon_id)
    assert anchor_keys(terminal) == []
    assert elapsed_logged(terminal, andon_id) == {"raised": None, "acknowledged": None, "resolved": None}
    assert_response(terminal, andon_id, ACK_S + HOUR, END_S + HOUR)


def cli(args: list[str], data_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    common = ["--config", str(demo_config_path()), "--data-dir", str(data_dir)]
    code = main([*args, *common])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_the_cli_acknowledges_resolves_and_reports_the_elapsed_response(
    tmp_path: Path,
    clock: FakeClock,
    hours: float,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "data"
    serving = enrolled(open_terminal(data_dir, clock))
    andon_id = raise_call(serving)
    EscalationRunner(serving).tick()  # `serve` anchored it, then stopped: the anchor stays
    serving.close()
    two_minutes_with_a_step(clock, hours)
    # Each CLI verb opens its own terminal on the same clocks.
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    cli(["confirm-stop", andon_id, "--badge", TEAM_LEAD, "--pin-stdin"], data_dir, capsys)  # acknowledges
    clock.advance(minutes=2)
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    cli(
        ["resolve-andon", andon_id, "--note", "bins brought", "--badge", TEAM_LEAD, "--pin-stdin"],
        data_dir,
        capsys,
    )

    report = json.loads(cli(["metrics", "--json"], data_dir, capsys))
    response = report["material_response"]
    assert (response["count"], response["open_now"]) == (1, 0)
    assert (response["ack_p50_s"], response["resolve_p50_s"], response["resolve_max_s"]) == (
        ACK_S,
        END_S,
        END_S,
    )
    text = cli(["metrics"], data_dir, capsys)
    assert "material andons: 1 (0 open), acknowledged p50 2 min," in text, text
    assert "material at the line p50 4 min, p90 4 min, worst 4 min" in text, text
    out = tmp_path / "log.csv"
    cli(["export", "--event", "andon", "--out", str(out)], data_dir, capsys)
    with out.open(encoding="utf-8") as f:
        exported = {r["event"]: r["elapsed_s"] for r in read_csv(f) if r["andon_id"] == andon_id}
    assert exported == {"andon_raised": None, "andon_escalated": "0.0", "andon_acknowledged": "120.0",
                        "andon_resolved": "240.0"}  # fmt: skip
    terminal = open_terminal(data_dir, clock)
    try:
        assert elapsed_logged(terminal, andon_id) == {
            "raised": None,
            "acknowledged": ACK_S,
            "resolved": END_S,
        }
        assert_response(terminal, andon_id, ACK_S, END_S)
    finally:
        terminal.close()


@pytest.mark.broker
def test_the_runtime_on_a_real_broker_publishes_the_elapsed_response(
    terminal: Terminal, clock: FakeClock, mosquitto: Mosquitto
) -> None:
    topics = LineTopics(terminal.config.site.id, terminal.config.line.id)
    listener = Listener(mosquitto, [topics.andon])
    runtime = Runtime(terminal, settings_for(mosquitto.port), RuntimeOptions()).start()
    try:
        wait_for(runtime.subscribed, what="the terminal's link subscribed")
        andon_id = raise_call(terminal)
        wait_for(lambda: f"andon:{andon_id}" in anchor_keys(terminal), what="the runtime anchored the call")
        two_minutes_with_a_step(clock, 1)
        acknowledge(terminal, andon_id)
        clock.advance(minutes=2)
        resolve(terminal, andon_id)
        for action, seconds in (("acknowledged", ACK_S), ("resolved", END_S)):
            event, retained = listener.next(
                topics.andon, lambda p, a=action: p["action"] == a and p["id"] == andon_id
            )
            assert (event["elapsed_s"], event.get("downtime_s"), retained) == (seconds, None, False)
    finally:
        runtime.stop()
        listener.close()
    assert elapsed_logged(terminal, andon_id) == {"raised": None, "acknowledged": ACK_S, "resolved": END_S}
    assert_response(terminal, andon_id, ACK_S, END_S)


def test_an_acknowledge_after_the_resolve_records_its_own_time_and_announces_the_recorded_end(
    terminal: Terminal, clock: FakeClock
) -> None:
    """A STOP with a +1 h step in it, resolved before anyone acknowledged it, then acknowledged: its row
    records the time to acknowledge (360 s), and its message carries the stop's downtime as the
    resolve recorded it (240 s). Before, the acknowledged message's `downtime_s` was the wall
    difference (3,840 s): the acknowledge had no figure for an andon that had already ended."""
    seen: list[object] = []
    terminal.bus.subscribe(seen.append)
    andon_id = raise_stop(terminal)
    EscalationRunner(terminal).tick()
    two_minutes_with_a_step(clock, 1)
    clock.advance(minutes=2)
    assert svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    ).ok
    clock.advance(minutes=2)
    acknowledge(terminal, andon_id)
    assert elapsed_logged(terminal, andon_id) == {"raised": None, "resolved": END_S, "acknowledged": 360.0}
    [acked] = [
        andon_event_payload(terminal, e)
        for e in seen
        if isinstance(e, AndonChanged) and e.action == "acknowledged"
    ]
    assert (acked["downtime_s"], acked["elapsed_s"]) == (END_S, 360)
    [record] = read_andon_records(terminal, T0 - timedelta(days=1))
    assert (record.to_acknowledge_s(), record.to_end_s(), record.downtime_s(clock.now)) == (
        360.0,
        END_S,
        END_S,
    )
