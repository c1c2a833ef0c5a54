"""Andon use cases on a real SQLite file: lifecycle, permissions, PIN lockout, idle sessions,
suspension, escalation across a restart and a wall-clock step, and the material andon."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from kanban_terminal.domain.andon import AndonKind, AndonState, LineCondition
from kanban_terminal.domain.cards import Rejection
from kanban_terminal.domain.scans import Intent
from kanban_terminal.services import andon as svc
from kanban_terminal.services import suspension
from kanban_terminal.services.andon import AndonChanged, LineStateChanged
from kanban_terminal.services.andon_views import read_board
from kanban_terminal.services.auth import AuthSession, hash_pin, login, verify_pin
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.reports import build_report
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.card_log import verify_chain
from kanban_terminal.storage.tables import AndonEscalationRow, CardLogRow, CardRow, CredentialRow, RequestRow
from tests.support.andon import OPERATOR, PIN, SUPERVISOR, TEAM_LEAD, FakeClock, enrolled, open_terminal


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path, clock))
    yield t
    t.close()


def team_lead(terminal: Terminal) -> AuthSession:
    state = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert not isinstance(state, Rejection), state
    return AuthSession(state)


def log_rows(terminal: Terminal, prefix: str = "") -> list[CardLogRow]:
    with terminal.db.reading() as s:
        rows = s.exec(select(CardLogRow).order_by(col(CardLogRow.id))).all()
    return [r for r in rows if r.event.startswith(prefix)]


def events(terminal: Terminal) -> list[object]:
    seen: list[object] = []
    terminal.bus.subscribe(seen.append)
    return seen


def test_operator_call_lifecycle_is_logged_with_actors(terminal: Terminal, clock: FakeClock) -> None:
    seen = events(terminal)
    raised = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard")
    assert raised.ok and raised.andon is not None
    andon_id = raised.andon.id
    clock.advance(minutes=2)
    assert svc.acknowledge_andon(terminal, andon_id, SUPERVISOR, source="keyboard").ok
    clock.advance(minutes=3)
    done = svc.resolve_andon(terminal, andon_id, "gauge recalibrated", source="keyboard", actor=SUPERVISOR)
    assert done.ok and done.andon is not None and done.andon.andon.state is AndonState.CLOSED
    rows = log_rows(terminal, "andon_")
    assert [(r.event, r.actor, r.andon_id) for r in rows] == [
        ("andon_raised", None, andon_id),
        ("andon_acknowledged", SUPERVISOR, andon_id),
        ("andon_resolved", SUPERVISOR, andon_id),
    ]
    assert "gauge recalibrated" in rows[-1].detail
    states = [e.view.condition for e in seen if isinstance(e, LineStateChanged)]
    assert states == [LineCondition.CALL, LineCondition.CALL, LineCondition.RUNNING]
    with terminal.db.reading() as s:
        assert verify_chain(
            iter(s.exec(select(CardLogRow).order_by(col(CardLogRow.id))).all()), terminal.db.log_key
        ).ok


def test_resolved_unacknowledged_stays_on_the_board(terminal: Terminal) -> None:
    a = svc.raise_andon(terminal, AndonKind.CALL, "ST10", "HELP", source="keyboard").andon
    assert a is not None
    assert svc.resolve_andon(terminal, a.id, "sorted it", source="keyboard").ok
    board = read_board(terminal)
    assert board.line.condition is LineCondition.RUNNING
    assert [v.andon.state for v in board.line.active] == [AndonState.RESOLVED_UNACKNOWLEDGED]
    assert svc.acknowledge_andon(terminal, a.id, TEAM_LEAD, source="keyboard").ok
    assert read_board(terminal).line.active == ()


def test_operator_cannot_raise_or_resolve_a_stop(terminal: Terminal, clock: FakeClock) -> None:
    refused = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", actor=OPERATOR)
    assert not refused.ok and refused.rejection is not None and refused.rejection.reason == "needs_team_lead"
    auth = team_lead(terminal)
    stop = svc.raise_andon(terminal, AndonKind.STOP, "ST30", "SAFE", source="keyboard", auth=auth).andon
    assert stop is not None and read_board(terminal).line.stopped
    clock.advance(minutes=12)
    no = svc.resolve_andon(terminal, stop.id, "restart", source="keyboard", actor=OPERATOR)
    assert not no.ok and "team lead" in no.message
    assert read_board(terminal).line.stopped
    assert auth.current(terminal) is None  # 12 idle minutes ended the session: badge + PIN again
    auth = team_lead(terminal)
    yes = svc.resolve_andon(terminal, stop.id, "guard refitted", source="keyboard", auth=auth)
    assert yes.ok and yes.andon is not None
    assert yes.andon.andon.downtime(clock.now) is not None
    assert yes.andon.andon.downtime(clock.now).total_seconds() == 12 * 60  # type: ignore[union-attr]
    refusals = log_rows(terminal, "andon_refused")
    assert [r.actor for r in refusals] == [OPERATOR, OPERATOR]
    resolved = log_rows(terminal, "andon_resolved")[0]
    assert "downtime 720 s" in resolved.detail  # words for people ...
    facts = (resolved.andon_kind, resolved.andon_reason, resolved.station, resolved.downtime_s)
    assert facts == ("stop", "SAFE", "ST30", 720.0)  # ... and the facts metrics read


def test_wrong_pin_five_times_locks_out_logged_without_pin(terminal: Terminal, clock: FakeClock) -> None:
    for _ in range(5):
        assert isinstance(login(terminal, TEAM_LEAD, "9999", source="keyboard"), Rejection)
    locked = login(terminal, TEAM_LEAD, PIN, source="keyboard")
    assert isinstance(locked, Rejection) and locked.reason == "locked_out"
    clock.advance(seconds=31)
    assert not isinstance(login(terminal, TEAM_LEAD, PIN, source="keyboard"), Rejection)
    rows = log_rows(terminal, "auth_")
    assert [r.event for r in rows] == (
        ["auth_enrolled", *["auth_failure"] * 5, "auth_lockout", "auth_refused", "auth_success"]
    )
    assert all(r.actor == TEAM_LEAD for r in rows)
    assert not any(PIN in r.detail or "9999" in r.detail for r in rows)
    with terminal.db.reading() as s:
        cred = s.get(CredentialRow, TEAM_LEAD)
    assert cred is not None and PIN not in cred.pin_hash and cred.failures == 0


def test_operator_badge_cannot_log_in(terminal: Terminal) -> None:
    refused = login(terminal, OPERATOR, PIN, source="keyboard")
    assert isinstance(refused, Rejection) and refused.reason == "not_team_lead"


def test_team_lead_session_ends_after_inactivity(terminal: Terminal, clock: FakeClock) -> None:
    auth = team_lead(terminal)
    clock.advance(minutes=4)
    assert svc.raise_andon(terminal, AndonKind.STOP, "ST10", "MACH", source="keyboard", auth=auth).ok
    clock.advance(minutes=4)  # activity above renewed the session
    assert auth.current(terminal) is not None
    clock.advance(minutes=5)
    refused = svc.raise_andon(terminal, AndonKind.STOP, "ST20", "MACH", source="keyboard", auth=auth)
    assert not refused.ok and auth.state is None
    assert [r.event for r in log_rows(terminal, "auth_session")] == ["auth_session_ended"]


def test_production_pin_hash_is_salted_scrypt_n17() -> None:
    a, b = hash_pin(PIN), hash_pin(PIN)
    assert a != b and a.startswith("scrypt$131072$8$1$") and PIN not in a
    assert verify_pin(a, PIN) and not verify_pin(a, "4712") and not verify_pin("garbage", PIN)


def test_suspend_needs_team_lead_and_cancels_the_open_request(terminal: Terminal) -> None:
    card = next(iter(terminal.card_loops))
    assert record_scan(terminal, card, source="keyboard", intent=Intent.EMPTY).request_id
    refused = suspension.suspend_card(terminal, card, source="keyboard", auth=None)
    assert not refused.ok and "team lead" in refused.message
    auth = team_lead(terminal)
    assert suspension.suspend_card(terminal, card, source="keyboard", auth=auth, note="damaged").ok
    with terminal.db.reading() as s:
        row = s.get(CardRow, card)
        request = s.exec(select(RequestRow).where(RequestRow.card_id == card)).one()
    assert row is not None and row.state == "suspended" and row.open_request_id is None
    assert request.status == "cancelled" and request.closed_at is not None
    assert suspension.resume_card(terminal, card, source="keyboard", auth=auth).ok
    events_ = [(r.event, r.actor) for r in log_rows(terminal) if r.card_id == card][-3:]
    assert events_ == [("card_action_refused", None), ("suspended", TEAM_LEAD), ("resumed", TEAM_LEAD)]


def test_escalation_fires_each_tier_once_across_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    first = open_terminal(tmp_path, clock)
    a = svc.raise_andon(first, AndonKind.CALL, "ST20", "QUAL", source="keyboard").andon  # tiers 0, 5, 15 min
    assert a is not None
    runner = EscalationRunner(first)
    assert [e.tier for e in runner.tick()] == [0]
    assert runner.tick() == []
    clock.advance(minutes=4, seconds=59)
    assert runner.tick() == []
    first.close()  # the process dies between tiers

    clock.advance(seconds=1)
    second = open_terminal(tmp_path, clock)
    seen = events(second)
    restarted = EscalationRunner(second)
    fired = restarted.tick()
    assert [(e.tier, e.role) for e in fired] == [(1, "supervisor")]
    assert [e for e in seen if isinstance(e, AndonChanged)] == fired
    assert restarted.tick() == []
    clock.advance(minutes=10)
    assert [e.tier for e in restarted.tick()] == [2]
    clock.advance(minutes=60)
    assert restarted.tick() == []
    with second.db.reading() as s:
        assert len(s.exec(select(AndonEscalationRow)).all()) == 3
    assert [r.detail for r in log_rows(second, "andon_escalated")] == [
        "tier 0: team_lead called", "tier 1: supervisor called", "tier 2: manager called",
    ]  # fmt: skip
    second.close()


def test_wall_clock_steps_neither_refire_nor_fire_early(terminal: Terminal, clock: FakeClock) -> None:
    a = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard").andon
    assert a is not None
    runner = EscalationRunner(terminal)
    assert [e.tier for e in runner.tick()] == [0]
    clock.step_wall(hours=-1)  # NTP or a person sets the clock back an hour
    assert runner.tick() == []
    clock.advance(minutes=5)  # five real minutes later tier 1 is due, wall clock or not
    assert [e.tier for e in runner.tick()] == [1]
    clock.step_wall(hours=2)  # and forward again: tier 2 (15 min) must not fire early
    assert runner.tick() == []
    clock.advance(minutes=10)
    assert [e.tier for e in runner.tick()] == [2]


def test_after_a_reboot_the_stored_elapsed_time_counts_on(tmp_path: Path, clock: FakeClock) -> None:
    first = open_terminal(tmp_path, clock)
    assert svc.raise_andon(first, AndonKind.CALL, "ST20", "QUAL", source="keyboard").ok  # 0, 5, 15 min
    runner = EscalationRunner(first, boot_id=lambda: "boot-1")
    assert [e.tier for e in runner.tick()] == [0]
    clock.advance(minutes=2)
    assert runner.tick() == []  # and the anchor is saved: 2 min elapsed
    first.close()
    clock.mono = 3.0  # the PC rebooted: the monotonic clock starts again near zero
    clock.step_wall(hours=-1)  # and came up with its clock an hour behind
    second = open_terminal(tmp_path, clock)
    rebooted = EscalationRunner(second, boot_id=lambda: "boot-2")
    assert rebooted.tick() == []  # 2 min stored, nothing more: the wall clock is behind the save
    clock.advance(minutes=2, seconds=59)
    assert rebooted.tick() == []
    clock.advance(seconds=1)
    assert [e.tier for e in rebooted.tick()] == [1]
    second.close()


def test_a_wall_clock_step_back_lifts_shelves_instead_of_lengthening_them(
    terminal: Terminal, clock: FakeClock
) -> None:
    """Before (issue 17): a shelve ends at a wall time, so a clock set back 20 min silenced the button
    20 min longer than the team lead granted."""
    from kanban_terminal.services.andon_views import shelved_until

    assert svc.shelve_source(terminal, "ANDON-ST10", 30, source="keyboard", auth=team_lead(terminal)).ok
    runner = EscalationRunner(terminal)
    runner.tick()
    clock.advance(minutes=25)  # 5 min of the shelve left
    runner.tick()
    with terminal.db.reading() as s:
        assert shelved_until(s, "ANDON-ST10", clock()) is not None
    clock.step_wall(minutes=-20)  # the wall now says 25 min are left
    runner.tick()
    with terminal.db.reading() as s:
        assert shelved_until(s, "ANDON-ST10", clock()) is None
    [row] = log_rows(terminal, "andon_shelve_lifted")
    assert "ANDON-ST10" in row.detail and "stepped back 1200 s" in row.detail


def test_acknowledged_events_do_not_escalate(terminal: Terminal, clock: FakeClock) -> None:
    a = svc.raise_andon(terminal, AndonKind.CALL, "ST20", "QUAL", source="keyboard").andon
    assert a is not None
    runner = EscalationRunner(terminal)
    runner.tick()
    assert svc.acknowledge_andon(terminal, a.id, TEAM_LEAD, source="keyboard").ok
    clock.advance(minutes=30)
    assert runner.tick() == []


def test_material_andon_from_an_overdue_request_once(terminal: Terminal, clock: FakeClock) -> None:
    card = next(c for c, loop in terminal.card_loops.items() if loop.id == "ST20-PLATE")  # 30 min lead time
    request_id = record_scan(terminal, card, source="keyboard", intent=Intent.EMPTY).request_id
    assert request_id is not None
    runner = EscalationRunner(terminal)
    clock.advance(minutes=29)
    assert runner.raise_material_andons() == []
    clock.advance(minutes=1)
    raised = runner.raise_material_andons()
    assert len(raised) == 1
    clock.advance(minutes=1)
    assert runner.raise_material_andons() == []
    board = read_board(terminal)
    [mat] = board.line.active
    assert (mat.andon.reason, mat.andon.card_id, mat.andon.request_id) == ("MAT", card, request_id)
    assert (mat.andon.station, mat.andon.kind) == ("ST20", AndonKind.CALL)


def test_a_wall_clock_step_does_not_make_a_request_overdue(terminal: Terminal, clock: FakeClock) -> None:
    """Before (issue 17): "overdue" was due_at <= wall clock, so +1 h raised a material andon at once."""
    card = next(c for c, loop in terminal.card_loops.items() if loop.id == "ST20-PLATE")  # 30 min lead time
    record_scan(terminal, card, source="keyboard", intent=Intent.EMPTY)
    runner = EscalationRunner(terminal)
    assert runner.raise_material_andons() == []
    clock.step_wall(hours=1)  # NTP or a person sets the clock an hour ahead
    assert runner.raise_material_andons() == []
    clock.advance(minutes=29)
    assert runner.raise_material_andons() == []
    clock.advance(minutes=1)  # thirty real minutes after the request: now it is late
    assert len(runner.raise_material_andons()) == 1


def test_material_andon_is_resolved_by_the_delivery_and_still_needs_acknowledging(
    terminal: Terminal, clock: FakeClock
) -> None:
    card = next(c for c, loop in terminal.card_loops.items() if loop.id == "ST20-PLATE")
    record_scan(terminal, card, source="keyboard", intent=Intent.EMPTY)
    runner = EscalationRunner(terminal)
    clock.advance(minutes=31)
    [andon_id] = runner.raise_material_andons()
    clock.advance(minutes=5)
    assert record_scan(terminal, card, source="keyboard", intent=Intent.FULL).accepted
    runner.tick()
    [mat] = read_board(terminal).line.active
    assert mat.id == andon_id and mat.andon.state is AndonState.RESOLVED_UNACKNOWLEDGED
    assert mat.andon.note.startswith("request delivered")
    assert runner.resolve_supplied_material_andons() == []
    # Metrics count it against its loop: the raise row carries the card's loop as a column.
    report = build_report(terminal, days=1)
    per_loop = {m.loop_id: m.material_andons for m in report.loops}
    assert per_loop["ST20-PLATE"] == 1 and sum(per_loop.values()) == 1
    [record] = report.andons
    assert (record.kind, record.reason, record.station, record.material) == (
        "call",
        "MAT",
        "ST20",
        "ST20-PLATE",
    )


def test_material_andon_respects_the_loop_switch(tmp_path: Path, clock: FakeClock) -> None:
    from tests.support.andon import demo_config

    cfg = demo_config()
    loops = tuple(lp.model_copy(update={"material_andon": False}) for lp in cfg.loops)
    t = open_terminal(tmp_path, clock, cfg.model_copy(update={"loops": loops}))
    card = next(iter(t.card_loops))
    record_scan(t, card, source="keyboard", intent=Intent.EMPTY)
    clock.advance(hours=10)
    assert EscalationRunner(t).raise_material_andons() == []
    t.close()


def test_shelve_is_team_lead_only_and_bounded(terminal: Terminal) -> None:
    assert not svc.shelve_source(terminal, "ANDON-ST10", 30, source="keyboard", auth=None).ok
    auth = team_lead(terminal)
    too_long = svc.shelve_source(terminal, "ANDON-ST10", 61, source="keyboard", auth=auth)
    assert not too_long.ok and "at most 60 min" in too_long.message
    assert svc.shelve_source(terminal, "ANDON-ST10", 30, source="keyboard", auth=auth).ok


def test_an_empty_pin_is_refused_and_never_counts_toward_the_lockout(terminal: Terminal) -> None:
    """Enter on an empty PIN field, or an empty pipe: refused as "no PIN", never a wrong PIN, so six
    of them do not lock the team lead out (every door's login goes through here)."""
    for _ in range(6):
        refused = login(terminal, TEAM_LEAD, "", source="keyboard")
        assert isinstance(refused, Rejection) and refused.reason == "no_pin"
    assert not isinstance(login(terminal, TEAM_LEAD, PIN, source="keyboard"), Rejection)
    events = [r.event for r in log_rows(terminal, "auth_")]
    assert events == ["auth_enrolled", *["auth_refused"] * 6, "auth_success"]
