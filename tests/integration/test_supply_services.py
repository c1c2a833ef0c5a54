"""Supplier warnings, re-routes and delivery in full on real SQLite files (issues 17, 18).

Each test drives the use cases as the screen, the CLI and the inbound worker do, and reads the file
back with plain sqlite3: the request rows, the card, the cancels, the log, the scorecard.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.domain.inbound import UpstreamStatus
from kanban_terminal.services.delivery_issue import record_delivery_issue
from kanban_terminal.services.log_integrity import verify_log
from kanban_terminal.services.reports import build_report, loop_histories
from kanban_terminal.services.reroute import reroute_loop
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.supplier_trouble import SupplierWarned, promised_arrivals
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.services.upstream_status import apply_upstream_status
from tests.integration.conftest import Clock
from tests.support.supply_lines import supply_config, team_lead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def terminal(tmp_path: Path, clock: Clock) -> Iterator[Terminal]:
    config, _ = supply_config(tmp_path)
    t = Terminal.open(config, tmp_path / "data", clock=clock)
    yield t
    t.close()


def q(terminal: Terminal, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def one(terminal: Terminal, sql: str, *args: Any) -> Any:
    rows = q(terminal, sql, *args)
    assert len(rows) == 1, rows
    return rows[0][0] if len(rows[0]) == 1 else rows[0]


def raise_request(terminal: Terminal, card: str) -> str:
    outcome = record_scan(terminal, card, source="test")
    assert outcome.kind.value == "request_raised", outcome.message
    assert outcome.request_id is not None
    return outcome.request_id


def deliver(terminal: Terminal, clock: Clock, card: str, minutes: float = 30) -> None:
    clock.advance(minutes=minutes)
    outcome = record_scan(terminal, card, source="test", confirmed=True)
    assert outcome.kind.value == "delivered", outcome.message


def status(request_id: str, kind: str, at: Any, **kw: Any) -> UpstreamStatus:
    return UpstreamStatus(f"s-{kind}-{at:%H%M%S}", request_id, kind, at, **kw)


# -- supplier trouble seen early -------------------------------------------------------------------


def test_a_delay_annotates_the_open_request_and_the_first_sign_starts_the_response_clock(
    terminal: Terminal, clock: Clock
) -> None:
    heard: list[object] = []
    terminal.bus.subscribe(heard.append)
    rid = raise_request(terminal, "C00001")
    assert apply_upstream_status(terminal, status(rid, "accepted", clock.now)).moved
    first = clock.advance(minutes=5)
    eta = first + timedelta(hours=2)
    applied = apply_upstream_status(terminal, status(rid, "delayed", first, eta=eta, reason="truck late"))
    assert applied.moved and applied.note == "card C00001 delayed"
    # The card stays where it was: a warning is an annotation, not a move backwards.
    assert one(terminal, "SELECT state FROM card WHERE id = 'C00001'") == "accepted"
    row = one(terminal, "SELECT trouble, trouble_reason, trouble_at, eta, status FROM replenishment_request "
                        "WHERE id = ?", rid)  # fmt: skip
    assert row[0:2] == ("delayed", "truck late") and row[4] == "accepted"
    assert row[2].startswith(first.strftime("%Y-%m-%dT%H:%M")) and row[3].startswith(
        eta.strftime("%Y-%m-%dT%H:%M")
    )
    log = q(terminal, "SELECT event, from_state, to_state, detail FROM card_log WHERE request_id = ? "
                      "AND event = 'delayed'", rid)  # fmt: skip
    assert len(log) == 1 and log[0][1] == log[0][2] == "accepted" and "truck late" in log[0][3]
    assert [e for e in heard if isinstance(e, SupplierWarned)] == [
        SupplierWarned(rid, "LP0", "C00001", "delayed", eta, "truck late")
    ]
    # The runway's read: the promised arrival is the new ETA, not the due time.
    (promise,) = promised_arrivals(terminal, "LP0")
    assert (promise.request_id, promise.quantity, promise.expected_at) == (rid, 10, eta)

    # The same warning again (a redelivery) changes nothing; a later at-risk keeps the first sign.
    assert not apply_upstream_status(
        terminal, status(rid, "delayed", first, eta=eta, reason="truck late")
    ).moved
    clock.advance(minutes=10)
    assert apply_upstream_status(terminal, status(rid, "at_risk", clock.now, reason="strike")).moved
    trouble, trouble_at, kept_eta = one(
        terminal, "SELECT trouble, trouble_at, eta FROM replenishment_request WHERE id = ?", rid
    )
    assert trouble == "at_risk" and trouble_at.startswith(first.strftime("%Y-%m-%dT%H:%M"))
    assert kept_eta.startswith(eta.strftime("%Y-%m-%dT%H:%M"))

    deliver(terminal, clock, "C00001", minutes=45)  # 55 min after the first sign (10 + 45)
    (sm1,) = [x for x in build_report(terminal).resilience if x.source == "SM1"]
    assert (sm1.disruptions, sm1.open_disruptions, sm1.response_p50_s) == (1, 0, 3300.0)
    assert verify_log(terminal.db).ok


def test_a_warning_about_a_closed_or_unknown_request_changes_no_card(
    terminal: Terminal, clock: Clock
) -> None:
    rid = raise_request(terminal, "C00001")
    deliver(terminal, clock, "C00001")
    late = apply_upstream_status(terminal, status(rid, "delayed", clock.now, eta=clock.now))
    assert not late.moved and "closed" in late.note
    assert one(terminal, "SELECT trouble FROM replenishment_request WHERE id = ?", rid) is None
    made_up = "00000000-0000-4000-8000-000000000000"
    assert not apply_upstream_status(terminal, status(made_up, "at_risk", clock.now)).moved
    assert one(terminal, "SELECT count(*) FROM rejected_input WHERE input = ?", made_up) == 1


# -- second sources --------------------------------------------------------------------------------


def test_a_reroute_moves_every_open_request_to_the_second_source_in_one_go(
    terminal: Terminal, clock: Clock
) -> None:
    old = [raise_request(terminal, c) for c in ("C00001", "C00002")]
    other_loop = raise_request(terminal, "C00004")  # LP1: not re-routed
    clock.advance(minutes=1)

    refused = reroute_loop(terminal, "LP0", source="test", auth=None)
    assert not refused.ok and "team lead" in refused.message
    assert one(terminal, "SELECT count(*) FROM replenishment_request WHERE status = 'rerouted'") == 0
    assert one(terminal, "SELECT count(*) FROM card_log WHERE event = 'reroute_refused'") == 1

    auth = team_lead(terminal)
    done = reroute_loop(terminal, "LP0", source="test", auth=auth, note="SM1 flooded")
    assert done.ok and done.source == "SM2" and [m[1] for m in done.moved] == old
    for card, cancelled, new in done.moved:
        request = "SELECT status, closed_at IS NOT NULL FROM replenishment_request WHERE id = ?"
        assert one(terminal, request, cancelled) == ("rerouted", 1)
        request = "SELECT card_id, source, status, quantity FROM replenishment_request WHERE id = ?"
        assert one(terminal, request, new) == (card, "SM2", "queued", 10)
        assert one(terminal, "SELECT state, open_request_id FROM card WHERE id = ?", card) == ("queued", new)
        cancel = "SELECT source, replaced_by, answered_at FROM request_cancel WHERE request_id = ?"
        assert one(terminal, cancel, cancelled) == ("SM1", new, None)
        logged = (
            "SELECT actor, detail LIKE '%SM1 flooded%' FROM card_log WHERE event = 're_routed' "
            "AND card_id = ?"
        )
        assert one(terminal, logged, card) == ("TL1", 1)
    assert one(terminal, "SELECT source FROM replenishment_request WHERE id = ?", other_loop) == "SM1"
    # The loop's next request goes to the second source too.
    assert (
        one(
            terminal,
            "SELECT source FROM replenishment_request WHERE id = ?",
            raise_request(terminal, "C00003"),
        )
        == "SM2"
    )
    assert one(terminal, "SELECT source FROM loop_route WHERE loop_id = 'LP0'") == "SM2"

    back = reroute_loop(terminal, "LP0", source="test", auth=auth)
    assert back.ok and back.source == "SM1" and len(back.moved) == 3
    assert q(terminal, "SELECT * FROM loop_route") == []
    assert not reroute_loop(terminal, "LP1", source="test", auth=auth).ok  # no second source named
    sm1 = next(x for x in build_report(terminal).resilience if x.source == "SM1")
    sm2 = next(x for x in build_report(terminal).resilience if x.source == "SM2")
    assert (sm1.rerouted, sm1.rerouted_share) == (2, 1.0)
    assert (sm2.rerouted, sm2.rerouted_share) == (3, 1.0)
    assert verify_log(terminal.db).ok


# -- delivery in full ------------------------------------------------------------------------------


def test_short_and_damaged_at_the_delivery_scan(terminal: Terminal, clock: Clock) -> None:
    first = raise_request(terminal, "C00001")
    before = one(terminal, "SELECT count(*) FROM card_log")
    not_yet = record_delivery_issue(terminal, "C00001", short=2, source="test")
    assert not not_yet.ok and "no delivery" in not_yet.message
    deliver(terminal, clock, "C00001")
    too_many = record_delivery_issue(terminal, "C00001", short=8, damaged=3, source="test")
    assert not too_many.ok and "more than the 10 parts" in too_many.message
    assert one(terminal, "SELECT count(*) FROM card_log") == before + 1  # the delivery only

    short = record_delivery_issue(terminal, "C00001", short=4, source="keyboard", actor="OP1")
    assert short.ok and short.shortfall_request_id is not None
    assert one(terminal, "SELECT short_qty, damaged_qty FROM replenishment_request WHERE id = ?", first) == (
        4,
        0,
    )
    assert one(terminal, "SELECT quantity, shortfall_of, status FROM replenishment_request WHERE id = ?",
               short.shortfall_request_id) == (4, first, "queued")  # fmt: skip
    assert one(terminal, "SELECT state, open_request_id FROM card WHERE id = 'C00001'") == (
        "queued", short.shortfall_request_id)  # fmt: skip
    again = record_delivery_issue(terminal, "C00001", damaged=1, source="test")
    assert not again.ok  # the card waits for its shortfall: no delivery to record on

    deliver(terminal, clock, "C00001")  # the shortfall arrives: 3 of its 4 damaged
    damaged = record_delivery_issue(terminal, "C00001", damaged=3, source="keyboard", actor="OP1")
    assert damaged.ok and damaged.andon_id is not None and "quality called" in damaged.message
    assert one(terminal, "SELECT kind, reason, station, card_id, state FROM andon WHERE id = ?",
               damaged.andon_id) == ("call", "QUAL", "ST1", "C00001", "raised")  # fmt: skip
    assert not record_delivery_issue(terminal, "C00001", short=1, source="test").ok  # recorded already
    events = [e for (e,) in q(terminal, "SELECT event FROM card_log WHERE card_id = 'C00001' ORDER BY id")]
    assert events.count("short_delivered") == 1 and events.count("delivered_damaged") == 1

    raise_request(terminal, "C00002")
    deliver(terminal, clock, "C00002", minutes=1)  # in full and on time
    report = build_report(terminal)
    sm1 = next(x for x in report.resilience if x.source == "SM1")
    assert (sm1.deliveries, sm1.in_full_rate, sm1.short_parts, sm1.damaged_parts) == (3, 1 / 3, 4, 3)
    scorecard = next(s for source, _, s in report.sources if source == "SM1")
    assert scorecard.otif_rate == pytest.approx(1 / 3)  # the two deliveries on time but not in full miss
    assert verify_log(terminal.db).ok


def test_a_reserve_drawn_stops_the_disruption_clock_before_the_delivery(
    terminal: Terminal, clock: Clock
) -> None:
    """`UnitOfWork.supply.mark_safe` is what a reserve draw calls (the runway's red cards)."""
    rid = raise_request(terminal, "C00001")
    warned_at = clock.advance(minutes=5)
    assert apply_upstream_status(terminal, status(rid, "at_risk", warned_at, reason="strike")).moved
    clock.advance(minutes=20)
    with terminal.db.unit_of_work() as uow:
        assert uow.supply.mark_safe("LP0", clock.now) == 1
        assert uow.supply.mark_safe("LP0", clock.now) == 0  # the first draw counts, not a later one
    (sm1,) = [x for x in build_report(terminal).resilience if x.source == "SM1"]
    assert (sm1.disruptions, sm1.open_disruptions, sm1.response_p50_s) == (1, 0, 20 * 60.0)
    deliver(terminal, clock, "C00001", minutes=60)  # the delivery later does not move it
    (sm1,) = [x for x in build_report(terminal).resilience if x.source == "SM1"]
    assert sm1.response_p50_s == 20 * 60.0


def test_shortfalls_and_reroute_replacements_are_no_demand_and_a_shortfall_is_no_stockout(
    terminal: Terminal, clock: Clock
) -> None:
    """Sizing reads demand from requests (one per bin-empty): the requests issues 17/18 add are not
    bin-empties, and a card waiting for its shortfall has its bin at the line."""
    raise_request(terminal, "C00001")
    deliver(terminal, clock, "C00001")
    assert record_delivery_issue(terminal, "C00001", short=2, source="test").ok
    raise_request(terminal, "C00002")
    assert reroute_loop(terminal, "LP0", source="test", auth=team_lead(terminal)).ok
    raise_request(terminal, "C00003")  # every card of LP0 has an open request now
    clock.advance(hours=2)
    (lp0,) = [h for h in loop_histories(terminal) if h.loop_id == "LP0"]
    assert (
        len(lp0.empties) == 3
    )  # C00001, C00002 (re-routed) and C00003; not the shortfall or the replacement
    (metrics,) = [m for m in build_report(terminal).loops if m.loop_id == "LP0"]
    assert metrics.stockouts == 0  # C00001's bin is at the line, short by 2


def test_a_reroute_that_cannot_be_saved_moves_nothing(terminal: Terminal, clock: Clock) -> None:
    """One transaction: the database refuses the second cancel (a real SQLite abort, as a full disk
    would), and not one request, route, cancel or log row of the re-route remains."""
    old = [raise_request(terminal, c) for c in ("C00001", "C00002")]
    auth = team_lead(terminal)
    rows_before = one(terminal, "SELECT count(*) FROM card_log")
    con = sqlite3.connect(terminal.db.path)
    con.execute(
        "CREATE TRIGGER second_cancel_fails BEFORE INSERT ON request_cancel "
        "WHEN (SELECT count(*) FROM request_cancel) >= 1 BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )
    con.commit()
    con.close()
    done = reroute_loop(terminal, "LP0", source="test", auth=auth)
    assert not done.ok and done.message.startswith("NOT re-routed")
    assert q(terminal, "SELECT id, source, closed_at FROM replenishment_request ORDER BY loop_seq") == [
        (old[0], "SM1", None),
        (old[1], "SM1", None),
    ]
    assert q(terminal, "SELECT * FROM request_cancel") == [] and q(terminal, "SELECT * FROM loop_route") == []
    assert one(terminal, "SELECT count(*) FROM card_log") == rows_before
    assert q(
        terminal, "SELECT state, open_request_id FROM card WHERE id IN ('C00001', 'C00002') ORDER BY id"
    ) == [
        ("queued", old[0]),
        ("queued", old[1]),
    ]
