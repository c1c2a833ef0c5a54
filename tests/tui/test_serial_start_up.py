"""A serial scanner's read during start-up (issue floor80: only keyboard-wedge reads were tested
there). `run` paints the scan screen, then opens the runtime, which opens the serial ports; a card
read by the serial scanner meanwhile waits in the port and should be recorded once the runtime is
up, once, beside a wedge read held by the screen. Real runtime, real SQLite file, the scanner on a
real pty (raw after the first open, as a real port; a read once the port is open is recorded).

Found by this test: the read made while starting was lost, with nothing on screen, because pyserial
empties the port's input when it opens it; adapters/scanner_serial.py now opens the port without
that flush."""

from __future__ import annotations

import os
import sqlite3
import threading
import tty
from contextlib import ExitStack
from pathlib import Path

from kanban_terminal.config import SerialScannerSettings
from kanban_terminal.runtime import Runtime, open_runtime
from kanban_terminal.tui.app import KanbanApp
from kanban_terminal.tui.boot import RuntimeBoot
from tests.support.terminals import Clock, demo_config
from tests.tui.test_launch import _until

WEDGE, SERIAL, AFTER = "B1001Z", "B1101T", "B1201L"


async def test_a_serial_read_while_starting_is_recorded_once_the_runtime_is_up(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # as a real serial port: no line discipline holding or echoing the bytes
    config = demo_config().model_copy(
        update={"scanners": (SerialScannerSettings(name="ST10", port=os.ttyname(slave)),)}
    )
    gate = threading.Event()

    def opener(stack: ExitStack) -> Runtime:
        assert gate.wait(60), "the test never let the runtime open"
        return stack.enter_context(open_runtime(config, tmp_path, None, clock=Clock()))

    boot = RuntimeBoot(config, opener)
    app = KanbanApp(boot=boot)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press(*WEDGE, "enter")  # the wedge scanner: held by the screen
            os.write(master, f"]C1{SERIAL}\r".encode())  # the serial scanner: waits in the port
            await _until(pilot, lambda: app._early.held() == 1, "the wedge read held")
            assert not app.runtime_ready
            gate.set()
            await _until(pilot, lambda: app.runtime_ready and app._early.held() == 0, "runtime up")
            await _until(pilot, lambda: app.scanner_states.get("ST10"), "the serial port open")
            await _until(pilot, lambda: WEDGE in {r[1] for r in app.recent_rows()}, "the wedge read recorded")
            os.write(master, f"]C1{AFTER}\r".encode())  # a read once the port is open
            await _until(pilot, lambda: AFTER in {r[1] for r in app.recent_rows()}, "the read after start")
            await app.workers.wait_for_complete()
    finally:
        boot.close()
        os.close(master)
        os.close(slave)
    db = sqlite3.connect(tmp_path / "terminal.db")
    raised = db.execute(
        "SELECT card_id, source FROM card_log WHERE event = 'request_raised' ORDER BY id"
    ).fetchall()
    assert (WEDGE, "keyboard") in raised and (AFTER, "serial:ST10") in raised
    assert (SERIAL, "serial:ST10") in raised, "the serial read made while starting was dropped"
    assert len(raised) == 3
