"""R12: andon escalation counts elapsed time, whatever the wall clock does (libfaketime).

A real `serve` against a real broker runs under libfaketime with a timestamp file the test rewrites
to step the wall clock (FAKETIME_NO_CACHE: read at every clock call), the monotonic clock left real
(FAKETIME_DONT_FAKE_MONOTONIC). An andon CALL with tiers at 0, 6 and 12 s is raised on the same
fake wall clock; then the clock steps +1 h or -1 h while `serve` runs, or while it is down between
two tiers, or the plant's local time crosses the Europe/Berlin spring-forward (TZ set; UTC does not
step, nothing must happen). Each case must fire every tier exactly once, none before its delay in
real time, none an hour late (the wait allows 60 s), and the card log must explain every place where
`occurred_at` runs backwards with a `clock_stepped` row, which also says how far the clock went.

Asserts are bounds that load cannot break: a tier seen by the poller earlier than its delay fired
early (it is seen after it fires, never before).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.config import parse_config
from kanban_terminal.domain.andon import AndonKind
from kanban_terminal.services.andon import raise_andon
from kanban_terminal.services.terminal import Terminal, utc_now
from tests.faults import support
from tests.faults.support import query
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import line_config, wait_for

pytestmark = pytest.mark.broker
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
TIERS_S = (0.0, 6.0, 12.0)
HOUR = 3600
BERLIN_SPRING_FORWARD = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
"""02:00 CET becomes 03:00 CEST."""


class FakeWall:
    """The wall clock of the faked processes: real time plus the offset in the timestamp file."""

    def __init__(self, path: Path, offset_s: float = 0.0) -> None:
        self.path = path
        self.offset_s = float(round(offset_s))  # whole seconds: the file holds what this class adds
        self.write()

    def write(self) -> None:
        self.path.write_text(f"{self.offset_s:+.0f}\n")

    def step(self, seconds: float) -> None:
        self.offset_s += seconds
        self.write()

    def __call__(self) -> datetime:
        return utc_now() + timedelta(seconds=self.offset_s)

    def env(self, tz: str = "UTC") -> dict[str, str]:
        return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1", "TZ": tz}  # fmt: skip


class Line:
    """A config with one CALL reason escalating at `TIERS_S`, its data dir, a broker and `serve`."""

    def __init__(self, tmp: Path, wall: FakeWall, tz: str = "UTC", extra: str = "") -> None:
        if not LIBFAKETIME.exists() or shutil.which("faketime") is None:
            pytest.skip("libfaketime not installed (apt-get install -y faketime)")
        minutes = ", ".join(str(s / 60) for s in TIERS_S)
        text = (
            line_config(loops=1, cards=2, sensors=0)
            + (
                f'\n[[andon_reasons]]\ncode = "HLP"\nlabel = "help"\nkinds = ["call"]\n'
                f"escalation_minutes = [{minutes}]\n"
            )
            + extra
        )
        self.config_path = tmp / "line.toml"
        self.config_path.write_text(text)
        self.config = parse_config(text, str(self.config_path))
        self.data = tmp / "data"
        self.db = self.data / "terminal.db"
        self.wall, self.tz, self.log = wall, tz, tmp / "serve.log"
        Terminal.open(self.config, self.data, clock=wall).close()
        self.broker = Mosquitto(tmp / "broker").start()
        self.serve: subprocess.Popen[bytes] | None = None
        self.seen: dict[int, float] = {}

    def start(self) -> None:
        mark = len(self.log.read_bytes()) if self.log.exists() else 0
        self.serve = support.serve(
            self.config_path, self.data, self.broker.port, self.log, self.wall.env(self.tz)
        )
        wait_for(lambda: b"MQTT link subscribed to" in self.log.read_bytes()[mark:], what="serve up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        support.stop(self.serve, sig)

    def close(self) -> None:
        self.stop()
        self.broker.stop()

    def raise_call(self) -> float:
        """Raise the CALL on the fake wall clock (as the screen would); returns a monotonic time taken
        just before, so a tier seen `d` seconds after it fired at least `d` seconds after the raise."""
        before = time.monotonic()
        terminal = Terminal.open(self.config, self.data, clock=self.wall)
        try:
            assert raise_andon(terminal, AndonKind.CALL, "ST1", "HLP", source="keyboard").ok
        finally:
            terminal.close()
        return before

    def start_and_reach_tier_0(self) -> float:
        """Start `serve`, raise the CALL and wait for its tier 0; returns `raise_call`'s time."""
        self.start()
        raised = self.raise_call()
        self.watch_tiers(raised, 1)
        return raised

    def tiers(self) -> list[str]:
        rows = query(self.db, "SELECT detail FROM card_log WHERE event = 'andon_escalated' ORDER BY id")
        return [str(r[0]) for r in rows]

    def watch_tiers(self, raised: float, until: int, timeout: float = 60.0) -> dict[int, float]:
        """Poll until `until` tiers fired; the real seconds after the raise at which each was first
        seen (kept across calls, so a restart in between does not see tier 0 again)."""
        seen = self.seen

        def more() -> bool:
            for n in range(len(self.tiers())):
                seen.setdefault(n, time.monotonic() - raised)
            return len(seen) >= until

        wait_for(more, timeout=timeout, what=f"{until} tiers fired")
        return seen

    def rows(self) -> list[tuple[int, str, datetime, str]]:
        rows = query(self.db, "SELECT id, event, occurred_at, detail FROM card_log ORDER BY id")
        return [(int(str(i)), str(e), datetime.fromisoformat(str(at)), str(d)) for i, e, at, d in rows]


def assert_tiers_on_time(line: Line, seen: dict[int, float]) -> None:
    print(f"tiers due {TIERS_S} s, seen at {[round(seen[t], 2) for t in sorted(seen)]} s")  # the figures
    assert line.tiers() == ["tier 0: team_lead called", "tier 1: supervisor called", "tier 2: manager called"]
    for tier, delay in enumerate(TIERS_S):
        assert seen[tier] >= delay - 0.05, (
            f"tier {tier} fired {seen[tier]:.1f} s after the raise, due at {delay}"
        )


def assert_log_explains_itself(line: Line) -> list[str]:
    """Every backward jump of occurred_at is a clock_stepped row; returns the step rows' details."""
    rows = line.rows()
    for before, after in zip(rows, rows[1:], strict=False):
        if after[2] < before[2]:
            assert after[1] == "clock_stepped", f"row {after[0]} ({after[1]}) runs backwards with no mark"
    return [d for _, event, _, d in rows if event == "clock_stepped"]


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["plus-1h", "minus-1h"])
def test_a_step_while_running_moves_no_tier(tmp_path: Path, step: int) -> None:
    wall = FakeWall(tmp_path / "faketime.rc")
    line = Line(tmp_path, wall)
    try:
        raised = line.start_and_reach_tier_0()
        wall.step(step)
        seen = line.watch_tiers(raised, 3)
    finally:
        line.close()
    assert_tiers_on_time(line, seen)
    [stepped] = assert_log_explains_itself(line)
    assert ("forward 36" if step > 0 else "back 36") in stepped, stepped


@pytest.mark.parametrize("step", [HOUR, -HOUR], ids=["plus-1h", "minus-1h"])
def test_a_step_while_serve_is_down_between_tiers_moves_no_tier(tmp_path: Path, step: int) -> None:
    wall = FakeWall(tmp_path / "faketime.rc")
    line = Line(tmp_path, wall)
    try:
        raised = line.start_and_reach_tier_0()
        line.stop(signal.SIGKILL)  # dies between tier 0 and tier 1
        wall.step(step)
        line.start()
        seen = line.watch_tiers(raised, 3)
    finally:
        line.close()
    assert_tiers_on_time(line, seen)
    marks = assert_log_explains_itself(line)
    # A clock set back while down is seen at start against the last record; forward looks like downtime.
    assert len(marks) == (1 if step < 0 else 0), marks
    if step < 0:
        assert "set back while the terminal was down" in marks[0]


def test_the_dst_change_of_the_plant_moves_no_tier(tmp_path: Path) -> None:
    """Local time jumps 02:00 -> 03:00 three seconds after the raise; UTC, which the log keeps, runs on."""
    start = BERLIN_SPRING_FORWARD - timedelta(seconds=30)
    wall = FakeWall(tmp_path / "faketime.rc", (start - utc_now()).total_seconds())
    line = Line(tmp_path, wall, tz="Europe/Berlin")
    try:
        line.start()
        wait_for(lambda: wall() >= BERLIN_SPRING_FORWARD - timedelta(seconds=3), 40, "3 s before 02:00 CET")
        raised = line.raise_call()
        seen = line.watch_tiers(raised, 3)
    finally:
        line.close()
    assert_tiers_on_time(line, seen)
    assert assert_log_explains_itself(line) == []
    raised_at = next(at for _, event, at, _ in line.rows() if event == "andon_raised")
    assert raised_at < BERLIN_SPRING_FORWARD < line.rows()[-1][2]  # the change really was crossed
