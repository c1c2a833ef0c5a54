"""The inbound worker's share of the relay's work: publishing the requests its group just raised
(`publish_fresh`) and marking PUBACKs inside its group's transaction (`take_acked` / `marked`).

Both skip a turn of the relay thread; neither may cost the per-loop order or a request.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.relay import Relay
from kanban_terminal.services.relay_window import MIN_BACKLOG_INFLIGHT
from kanban_terminal.services.signals import SignalResult
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.outbox import FreshRows
from kanban_terminal.storage.scan_repo import driver
from tests.support.mqtt_lines import make_config
from tests.unit.test_relay import Broker, Clock, card_state, raise_requests, rows


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def terminal(tmp_path: Path, clock: Clock) -> Terminal:
    config, _ = make_config(tmp_path, loops=2, cards=30, sensors=0)
    t = Terminal.open(config, tmp_path / "data", clock=clock)
    yield t
    t.close()


def request_of(terminal: Terminal, card: str) -> tuple[str, str]:
    con = sqlite3.connect(terminal.db.path)
    try:
        q = "SELECT id, loop_id FROM replenishment_request WHERE card_id = ? AND closed_at IS NULL"
        request_id, loop_id = con.execute(q, (card,)).fetchone()
        return str(request_id), str(loop_id)
    finally:
        con.close()


def fresh(terminal: Terminal, relay: Relay, cards: list[str]) -> FreshRows:
    """What the worker reads inside its group's transaction for the requests of `cards`."""
    with terminal.db.unit_of_work() as uow:
        return uow.outbox.fresh([request_of(terminal, c) for c in cards], relay.window)


def test_a_fresh_request_goes_out_from_the_committing_thread(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001"])
    broker = Broker()
    relay = Relay(terminal, broker, window=20)
    relay.publish_fresh(fresh(terminal, relay, ["C00001"]))
    assert [m["card"] for _, m in broker.sent] == ["C00001"]
    relay.run_once()  # the relay thread's next read finds it in flight: not published twice
    assert len(broker.sent) == 1


def test_a_fresh_request_waits_while_an_older_one_of_its_loop_is_not_with_paho(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001", "C00002"])  # same loop, seq 1 and 2; C00001 never published
    broker = Broker()
    relay = Relay(terminal, broker, window=20)
    relay.publish_fresh(fresh(terminal, relay, ["C00002"]))
    assert broker.sent == []  # seq 2 must not overtake seq 1
    relay.run_once()
    assert [m["loop_seq"] for _, m in broker.sent] == [1, 2]


def test_a_fresh_request_follows_an_older_one_already_in_flight(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001"])
    broker = Broker()
    relay = Relay(terminal, broker, window=20)
    relay.run_once()
    raise_requests(terminal, ["C00002"])
    relay.publish_fresh(fresh(terminal, relay, ["C00002"]))
    assert [m["loop_seq"] for _, m in broker.sent] == [1, 2]


def test_no_fresh_publish_over_a_full_window_or_without_a_link(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001"])
    broker = Broker()
    broker.connected = False
    relay = Relay(terminal, broker, window=20)
    relay.publish_fresh(fresh(terminal, relay, ["C00001"]))
    assert broker.sent == []
    broker.connected = True
    small = Relay(terminal, broker, window=1)
    small.run_once()  # C00001 fills the window
    raise_requests(terminal, ["C00031"])  # the other loop
    small.publish_fresh(fresh(terminal, small, ["C00031"]))
    assert [m["card"] for _, m in broker.sent] == ["C00001"]


def test_pubacks_marked_in_the_workers_transaction(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001", "C00002"])
    broker = Broker()
    relay = Relay(terminal, broker, window=20)
    relay.run_once()
    for mid, _ in broker.sent:
        relay.on_published(mid, True, "Success")
    relay.hold_marks(True)  # the worker is in a group: the relay leaves the marks to it
    relay.run_once()
    assert rows(terminal)["C00001"] == ("pending", 0)
    acked = relay.take_acked()
    assert len(acked) == 2
    with terminal.db.unit_of_work() as uow:
        moved = relay.mark_in(uow, acked)
    relay.marked(acked, moved, committed=True)
    relay.hold_marks(False)
    relay.run_once()
    assert rows(terminal)["C00001"] == ("published", 1)
    assert card_state(terminal, "C00002") == "sent"
    assert len(broker.sent) == 2  # marked once, never published again
    assert relay.published_total == 2
    assert verify_log(terminal.db).ok


def test_pubacks_of_a_rolled_back_group_are_marked_later(terminal: Terminal) -> None:
    raise_requests(terminal, ["C00001"])
    broker = Broker()
    relay = Relay(terminal, broker, window=20)
    relay.run_once()
    relay.on_published(broker.sent[0][0], True, "Success")
    relay.hold_marks(True)
    acked = relay.take_acked()
    relay.marked(acked, [], committed=False)  # the group's transaction failed
    relay.hold_marks(False)
    relay.run_once()
    assert rows(terminal)["C00001"] == ("published", 1)
    assert card_state(terminal, "C00001") == "sent"
    assert len(broker.sent) == 1


def test_a_write_without_fsync_leaves_the_connection_fsyncing(terminal: Terminal) -> None:
    with terminal.db.write_connection(fsync=False) as conn:
        raw = driver(conn)
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for the next user


def test_an_answer_the_worker_takes_still_wakes_the_relay_for_a_row_left_behind(terminal: Terminal) -> None:
    # The soak's outage drain took 3.6 s instead of 1 s without this: the worker's take_acked saw
    # the answer that freed the window, and the relay thread, already awake and finding no answer,
    # slept until its 1 s sweep.
    raise_requests(terminal, ["C00001", "C00002"])
    broker = Broker()
    relay = Relay(terminal, broker, window=1)
    relay.run_once()  # C00002 left behind for want of window
    relay.on_published(broker.sent[0][0], True, "Success")
    relay._wake.clear()  # the relay thread woke on that answer before the worker took it
    relay.take_acked()
    assert relay._wake.is_set()
    relay.run_once()
    assert [m["card"] for _, m in broker.sent] == ["C00001", "C00002"]


def test_answers_bring_another_read_after_a_step_that_found_the_backlog_share_used_up(
    tmp_path: Path, clock: Clock
) -> None:
    # The drain bench stalled on this (3,750 instead of ~5,900 req/s): a step that began with the
    # backlog's share of the window used up read only live rows, counted as "nothing left behind",
    # and the answers to that backlog then brought no read until the 1 s sweep.
    config, _ = make_config(tmp_path, loops=2, cards=100, sensors=0)  # LP1 = C00101..C00200
    terminal = Terminal.open(config, tmp_path / "data", clock=clock)
    try:
        raise_requests(terminal, [f"C{i:05d}" for i in range(1, 41)])
        clock.now += timedelta(minutes=5)  # a backlog now
        broker = Broker()
        relay = Relay(terminal, broker, window=200)
        relay.run_once()
        assert relay.inflight == MIN_BACKLOG_INFLIGHT  # the backlog's share, broker speed unknown
        raise_requests(terminal, ["C00101"])
        relay._step()  # as the relay thread does on the new request's wake: the live row goes out
        assert broker.sent[-1][1]["card"] == "C00101"
        for mid, _m in broker.sent[:MIN_BACKLOG_INFLIGHT]:
            relay.on_published(mid, True, "Success")
        relay._step()  # the thread's step on those answers (not run_once, which always reads)
        assert len(broker.sent) > MIN_BACKLOG_INFLIGHT + 1
    finally:
        terminal.close()


def test_marks_held_for_a_busy_worker_never_pile_up_beyond_a_window(terminal: Terminal) -> None:
    # A worker busy with upstream statuses only (a drain's answers) has no signal group to mark in.
    raise_requests(terminal, ["C00001", "C00002", "C00003"])
    broker = Broker()
    relay = Relay(terminal, broker, window=2)
    relay.run_once()
    relay.hold_marks(True)
    relay.on_published(broker.sent[0][0], True, "Success")
    relay._step()
    assert rows(terminal)["C00001"] == ("pending", 0)  # held: the worker's group may take it
    relay.on_published(broker.sent[1][0], True, "Success")
    relay._step()
    assert rows(terminal)["C00001"] == ("published", 1)  # a window's worth: the relay marks them
    assert rows(terminal)["C00002"] == ("published", 1)


def test_pubacks_taken_by_a_group_that_fails_before_its_commit_are_marked_later(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kanban_terminal.runtime import TerminalServices
    from kanban_terminal.services.signals import BinSignal, SignalNotStored

    config, _ = make_config(tmp_path, loops=2, cards=30, sensors=5)
    terminal = Terminal.open(config, tmp_path / "data", clock=clock)
    try:
        raise_requests(terminal, ["C00010"])
        broker = Broker()
        relay = Relay(terminal, broker, window=20)
        relay.run_once()
        relay.on_published(broker.sent[0][0], True, "Success")
        services = TerminalServices(terminal, None)
        services.relay = relay  # the worker's hook, without a broker link

        def failing_mark(uow: object, request_ids: list[str]) -> list[str]:
            raise SignalNotStored("disk I/O error")

        monkeypatch.setattr(relay, "mark_in", failing_mark)
        signal = BinSignal("BS00001:b:1", "BS00001", "b", 1, "empty", clock.now)
        with pytest.raises(SignalNotStored):
            services.applier.apply([signal], services.inbound._before_group_commit)
        monkeypatch.undo()
        relay.run_once()  # the relay still has the answer and marks it
        assert rows(terminal)["C00010"] == ("published", 1)
        assert len(broker.sent) == 1
    finally:
        terminal.close()


def test_a_group_joined_by_the_relay_marks_its_pubacks_and_publishes_its_requests_after_commit(
    tmp_path: Path, clock: Clock
) -> None:
    from kanban_terminal.runtime import TerminalServices
    from kanban_terminal.services.signals import BinSignal
    from kanban_terminal.storage.unit_of_work import UnitOfWork

    config, _ = make_config(tmp_path, loops=2, cards=30, sensors=5)
    terminal = Terminal.open(config, tmp_path / "data", clock=clock)
    try:
        raise_requests(terminal, ["C00010"])
        broker = Broker()
        relay = Relay(terminal, broker, window=20)
        relay.run_once()
        relay.on_published(broker.sent[0][0], True, "Success")
        services = TerminalServices(terminal, None)
        services.relay = relay
        seen_inside: list[int] = []

        def hook(uow: UnitOfWork, results: list[SignalResult]) -> None:
            services.inbound._before_group_commit(uow, results)
            seen_inside.append(len(broker.sent))  # nothing new goes out before the commit

        signal = BinSignal("BS00001:b:1", "BS00001", "b", 1, "empty", clock.now)
        results = services.applier.apply([signal], hook)
        assert seen_inside == [1]
        assert rows(terminal)["C00010"] == ("published", 1)  # marked in the group's transaction
        assert card_state(terminal, "C00010") == "sent"
        request_id = results[0].outcome.request_id if results[0].outcome else None
        assert [m["id"] for _, m in broker.sent[1:]] == [request_id]  # published right after commit
        relay.run_once()
        assert len(broker.sent) == 2  # neither published twice
        assert verify_log(terminal.db).ok
    finally:
        terminal.close()
