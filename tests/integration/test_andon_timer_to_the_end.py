"""An andon's elapsed timer runs from its raise to its end, acknowledged or not, also across a reboot.

Branch `onemono`: the escalation runner used to drop an andon's anchor at the acknowledge, and the
acknowledge kept a copy (`andon-kept:<id>`) that nothing refreshed. Now the runner keeps its own anchor
until the resolve or cancel, saving it every minute, so after a reboot (a new boot id, the monotonic
clock back near zero) a stop counts its elapsed time up to the last save plus only the wall time
since then; a +1 h step before the reboot is not counted. Every door agrees: the runner on the new
boot, the service the screen calls, and the CLI in its own process resolving before `serve` is back.

And a stop acknowledged under the older version (its `andon-kept:` row written first, no runner
anchor) keeps its monotonic count after the upgrade: read by the resolve, taken over by the runner.
Real SQLite files; FakeClock moves both clocks (tests/support/andon.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kanban_terminal.cli import main
from kanban_terminal.config import demo_config_path
from kanban_terminal.domain.clocks import ElapsedAnchor
from kanban_terminal.services import andon as svc
from kanban_terminal.services.andon_elapsed import boot_id
from kanban_terminal.services.escalation import EscalationRunner
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage import elapsed_anchors
from tests.integration.test_stop_downtime_steps import (
    STOP_S,
    anchor_keys,
    assert_recorded,
    four_minutes_with_a_step,
    raise_stop,
    team_lead,
)
from tests.support.andon import PIN, TEAM_LEAD, FakeClock, enrolled, open_terminal

OLD_BOOT = "boot-before-the-power-cut"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def terminal(tmp_path: Path, clock: FakeClock):  # type: ignore[no-untyped-def]
    t = enrolled(open_terminal(tmp_path / "data", clock))
    yield t
    t.close()


def serve_for_four_minutes_then_reboot(terminal: Terminal, clock: FakeClock) -> str:
    """A stop raised, acknowledged, four minutes of `serve` ticking (a +1 h step halfway), then the
    power goes for a minute: a new boot, the monotonic clock starts again near zero."""
    andon_id = raise_stop(terminal)
    runner = EscalationRunner(terminal, boot_id=lambda: OLD_BOOT)
    runner.tick()
    assert svc.acknowledge_andon(terminal, andon_id, TEAM_LEAD, source="keyboard").ok
    for _ in range(2):
        clock.advance(minutes=1)
        runner.tick()
    clock.step_wall(hours=1)
    for _ in range(2):
        clock.advance(minutes=1)
        runner.tick()
    # The runner kept its anchor past the acknowledge and saved it each minute: 240 s at the last.
    assert anchor_keys(terminal) == [f"andon:{andon_id}"]
    saved = elapsed_anchors.load(terminal.db, [f"andon:{andon_id}"])[f"andon:{andon_id}"]
    assert (saved.boot_id, saved.elapsed_s) == (OLD_BOOT, STOP_S)
    clock.advance(minutes=1)  # the power cut: wall time passes...
    clock.mono = 5.0  # ...and the monotonic clock of the new boot starts again
    return andon_id


def test_after_a_reboot_the_runner_and_the_resolve_count_from_the_last_save(
    terminal: Terminal, clock: FakeClock
) -> None:
    andon_id = serve_for_four_minutes_then_reboot(terminal, clock)
    EscalationRunner(terminal).tick()  # `serve` back on the new boot (this machine's boot id)
    again = elapsed_anchors.load(terminal.db, [f"andon:{andon_id}"])[f"andon:{andon_id}"]
    assert (again.boot_id, again.mono_s, again.elapsed_s) == (boot_id(), 5.0, STOP_S + 60)
    clock.advance(minutes=1)
    assert svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    ).ok
    # 4 min before the cut + 1 min of wall time across it + 1 min after; not the hour of the step.
    assert_recorded(terminal, andon_id, STOP_S + 120)


def test_the_cli_resolving_after_a_reboot_before_serve_is_back_agrees(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    serving = enrolled(open_terminal(data_dir, clock))
    andon_id = serve_for_four_minutes_then_reboot(serving, clock)
    serving.close()
    clock.advance(minutes=1)
    opened = Terminal.open.__func__  # type: ignore[attr-defined]
    both = {"clock": clock, "monotonic": clock.monotonic}
    monkeypatch.setattr(Terminal, "open", classmethod(lambda cls, *a, **k: opened(cls, *a, **{**k, **both})))
    monkeypatch.setattr("sys.stdin", io.StringIO(PIN + "\n"))
    common = ["--config", str(demo_config_path()), "--data-dir", str(data_dir)]
    args = ["resolve-andon", andon_id, "--note", "guard refitted", "--badge", TEAM_LEAD, "--pin-stdin"]
    assert main([*args, *common]) == 0, capsys.readouterr().out
    terminal = open_terminal(data_dir, clock)
    try:
        assert_recorded(terminal, andon_id, STOP_S + 120)
    finally:
        terminal.close()


def kept_by_the_older_version(terminal: Terminal, clock: FakeClock) -> str:
    """A stop the older version anchored, acknowledged and copied to `andon-kept:` (its runner then
    dropped `andon:`): the rows as that version left them, written first."""
    andon_id = raise_stop(terminal)
    assert svc.acknowledge_andon(terminal, andon_id, TEAM_LEAD, source="keyboard").ok
    kept = ElapsedAnchor(f"andon-kept:{andon_id}", boot_id(), clock.mono, 0.0, clock.now)
    with terminal.db.unit_of_work() as uow:
        elapsed_anchors.save(uow.session, [kept])
    assert anchor_keys(terminal) == [f"andon-kept:{andon_id}"]
    return andon_id


def test_a_stop_kept_by_the_older_version_keeps_its_count_without_a_runner(
    terminal: Terminal, clock: FakeClock
) -> None:
    andon_id = kept_by_the_older_version(terminal, clock)
    four_minutes_with_a_step(clock, 1)
    assert svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    ).ok
    assert_recorded(terminal, andon_id, STOP_S)
    assert anchor_keys(terminal) == []  # the resolve deleted the old copy


@pytest.mark.parametrize("hours", [1, -1], ids=["stepped+1h", "stepped-1h"])
def test_the_runner_takes_over_a_stop_kept_by_the_older_version(
    terminal: Terminal, clock: FakeClock, hours: float
) -> None:
    andon_id = kept_by_the_older_version(terminal, clock)
    clock.advance(minutes=2)
    runner = EscalationRunner(terminal)  # the upgraded `serve`
    runner.tick()
    assert anchor_keys(terminal) == [f"andon:{andon_id}"]  # moved, with its count
    taken = elapsed_anchors.load(terminal.db, [f"andon:{andon_id}"])[f"andon:{andon_id}"]
    assert taken.elapsed_s == 120.0
    clock.step_wall(hours=hours)
    clock.advance(minutes=2)
    runner.tick()
    assert svc.resolve_andon(
        terminal, andon_id, "guard refitted", source="keyboard", auth=team_lead(terminal)
    ).ok
    assert_recorded(terminal, andon_id, STOP_S)
    runner.tick()
    assert anchor_keys(terminal) == []
