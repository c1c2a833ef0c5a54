"""`run` paints the scan screen before it opens the runtime (issue 15, start-up).

The real App over a real runtime (`open_runtime`, a SQLite file in tmp_path), driven by Pilot; the
import order is watched in a fresh process through `cli.screen.run_screen`, what `run` calls.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
from textual.app import App
from textual.pilot import Pilot

from kanban_terminal.cli import EXIT_FAILED, main
from kanban_terminal.config import demo_config_path
from kanban_terminal.runtime import Runtime, open_runtime
from kanban_terminal.services.instance_lock import DataDirBusy
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.boot import RuntimeBoot
from kanban_terminal.tui.screens.scan import ScanScreen
from kanban_terminal.tui.widgets.banner import Banner
from kanban_terminal.tui.widgets.scan_field import ScanField
from kanban_terminal.tui.widgets.status_bar import StatusBar
from tests.support.terminals import Clock, demo_config

ROOT = Path(__file__).resolve().parents[2]
CARDS = ("B1001Z", "B1101T", "B1201L")  # three loops: each scan raises a request of its own

WATCH = """
import json, sys, threading

FORBIDDEN = ("sqlalchemy", "sqlmodel", "alembic", "kanban_terminal.storage.tables", "kanban_terminal.runtime")
seen = {"ready": False, "early": [], "late": [], "opened": False}


class Watch:
    # A finder that never finds: it only notes, for each forbidden module, whether it was first
    # imported before the App's first screen was ready, or on the screen's thread.
    def find_spec(self, name, path=None, target=None):
        if name in FORBIDDEN and name not in sys.modules:
            off_screen = threading.current_thread() is not threading.main_thread()
            seen["late" if seen["ready"] and off_screen else "early"].append(name)
        return None


sys.meta_path.insert(0, Watch())

from textual.app import App

real_ready = App._ready


async def ready(self):
    await real_ready(self)
    seen["ready"] = True


App._ready = ready

from kanban_terminal.cli import main
from kanban_terminal.tui.app import KanbanApp


def headless(self):
    async def autopilot(pilot):
        for _ in range(600):  # until the runtime is up (it then imports the storage stack)
            if getattr(self, "runtime_ready", True):
                break
            await pilot.pause(0.05)
        seen["opened"] = getattr(self, "runtime_ready", True)
        self.exit()

    App.run(self, headless=True, size=(80, 24), auto_pilot=autopilot)


KanbanApp.run = headless
code = main(["run", "--config", sys.argv[1], "--data-dir", sys.argv[2]])  # as `kanban-terminal run`
print(json.dumps({**seen, "code": code}))
"""


def test_the_storage_stack_is_imported_after_the_first_screen_and_off_its_thread(tmp_path: Path) -> None:
    """On main before this change, `run` imported sqlalchemy, sqlmodel, alembic, the tables and the
    runtime on the main thread before the App existed (`early`: the CLI's parser alone imported the
    runtime package); now only the boot thread imports them, once the scan screen is ready."""
    script = tmp_path / "watch.py"
    script.write_text(WATCH)
    done = subprocess.run(
        [sys.executable, str(script), str(demo_config_path()), str(tmp_path / "data")],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["early"] == []
    assert {"sqlalchemy", "sqlmodel", "kanban_terminal.storage.tables"} <= set(seen["late"])
    assert seen["opened"] is True and seen["code"] == 0


def _gated_boot(data_dir: Path, gate: threading.Event) -> RuntimeBoot:
    """The runtime `run` opens (offline), held until the test opens the gate."""
    config = demo_config()

    def opener(stack: ExitStack) -> Runtime:
        assert gate.wait(60), "the test never let the runtime open"
        return stack.enter_context(open_runtime(config, data_dir, None, clock=Clock()))

    return RuntimeBoot(config, opener)


async def _until(pilot: Pilot[None], done: object, what: str) -> None:
    for _ in range(600):
        if callable(done) and done():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never: {what}")


def _noting_app(boot: RuntimeBoot) -> tuple[KanbanApp, list[str]]:
    """An App built on `boot` whose notices are also kept in the list returned."""
    app = KanbanApp(boot=boot)
    notes: list[str] = []
    real_notify = app.notify

    def notify(message: str, **kwargs: object) -> None:
        notes.append(message)
        real_notify(message, **kwargs)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    return app, notes


async def test_scans_read_before_the_runtime_is_up_are_recorded_once_and_in_order(tmp_path: Path) -> None:
    gate = threading.Event()
    boot = _gated_boot(tmp_path, gate)
    app, notes = _noting_app(boot)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            field = app.screen.query_one(ScanField)
            assert isinstance(app.screen, ScanScreen) and field.has_focus
            assert "starting" in str(app.screen.query_one(StatusBar).render())
            for card in CARDS:  # a wedge scanner's reads: the code, then Enter
                await pilot.press(*card, "enter")
            await pilot.press("f2")  # the board needs the runtime: it says so, and nothing breaks
            await pilot.pause()
            assert isinstance(app.screen, ScanScreen)
            assert any("starting" in n for n in notes)
            assert not app.runtime_ready and app._early.held() == len(CARDS)
            assert "Scan a kanban card" in str(app.screen.query_one(Banner).render())  # nothing confirmed

            gate.set()
            await _until(pilot, lambda: app.runtime_ready and app._early.held() == 0, "runtime up")
            await _until(pilot, lambda: CARDS[-1] in str(app.screen.query_one(Banner).render()), "banner")
            await pilot.press("f2")  # now it opens
            await pilot.pause()
            assert not isinstance(app.screen, ScanScreen)
    finally:
        boot.close()
    db = sqlite3.connect(tmp_path / "terminal.db")
    raised = db.execute("SELECT card_id FROM card_log WHERE event = 'request_raised' ORDER BY id").fetchall()
    assert [r[0] for r in raised] == list(CARDS)
    assert db.execute("SELECT count(*) FROM replenishment_request").fetchone() == (len(CARDS),)


def test_a_runtime_that_cannot_open_is_shown_and_run_exits_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another `run` holds the data dir: the screen says why, a key closes it, and `run` exits
    with the code and the words it used when it opened the runtime before the App."""
    holder = Terminal.open(demo_config(), tmp_path, long_running=True)
    shown: dict[str, str] = {}

    def headless(self: KanbanApp) -> None:
        async def autopilot(pilot: Pilot[None]) -> None:
            await _until(pilot, lambda: bool(self.boot_failed), "the failure shown")
            await pilot.pause()
            shown["status"] = str(self.screen.query_one(StatusBar).render())
            shown["reason"] = self.boot_failed
            await pilot.press("f2")  # any of the App's keys closes it now

        App.run(self, headless=True, size=(80, 24), auto_pilot=autopilot)

    monkeypatch.setattr(KanbanApp, "run", headless)
    try:
        code = main(["run", "--config", str(demo_config_path()), "--data-dir", str(tmp_path)])
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert "not started" in shown["status"]
    assert shown["reason"] and shown["reason"] in err and err.startswith("kanban-terminal run: ")


@pytest.mark.broker
def test_the_demo_broker_started_after_the_first_paint_outlives_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo` starts its broker, peer and sensors on the boot thread; a process started there dies
    when that thread ends (PR_SET_PDEATHSIG), which in a first version killed the broker right after
    the start. A scan made once the runtime is up must still reach the peer and come back accepted."""
    events: list[str] = []

    def accepted() -> bool:
        with sqlite3.connect(f"file:{tmp_path / 'terminal.db'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT event FROM card_log WHERE card_id = ? ORDER BY id", (CARDS[0],))
            events[:] = [r[0] for r in rows]
        return "accepted" in events

    def headless(self: KanbanApp) -> None:
        async def autopilot(pilot: Pilot[None]) -> None:
            await _until(pilot, lambda: self.runtime_ready and self.runtime.subscribed(), "runtime up")
            await pilot.press(*CARDS[0], "enter")
            await _until(pilot, accepted, f"{CARDS[0]} accepted by the demo's peer")
            self.exit()

        App.run(self, headless=True, size=(80, 24), auto_pilot=autopilot)

    monkeypatch.setattr(KanbanApp, "run", headless)
    assert main(["demo", "--data-dir", str(tmp_path)]) == 0
    assert events[:3] == ["registered", "bin_empty", "request_raised"]


async def test_scans_held_for_a_runtime_that_cannot_open_are_said_not_recorded(tmp_path: Path) -> None:
    """The hold promised "recorded as soon as the terminal has started": when it cannot start, the
    screen must say those reads were not recorded, and refuse later ones in the same words."""
    holder = Terminal.open(demo_config(), tmp_path, long_running=True)  # another `run` holds the dir
    gate = threading.Event()
    boot = _gated_boot(tmp_path, gate)
    app, notes = _noting_app(boot)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press(*CARDS[0], "enter")
            await _until(pilot, lambda: app._early.held() == 1, "the read held")
            gate.set()
            await _until(pilot, lambda: bool(app.boot_failed), "the failure shown")
            assert any(
                "already running" in n and "1 scan(s) read while starting NOT recorded" in n for n in notes
            )
            await pilot.press(*CARDS[1], "enter")
            await pilot.pause()
            assert any(n.startswith(f"{CARDS[1]} NOT recorded") for n in notes)
        with pytest.raises(DataDirBusy, match="already running"):
            boot.close()
    finally:
        holder.close()
    db = sqlite3.connect(tmp_path / "terminal.db")
    assert db.execute("SELECT count(*) FROM card_log WHERE event = 'request_raised'").fetchone() == (0,)
