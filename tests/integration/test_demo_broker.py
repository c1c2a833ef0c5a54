"""The demo's embedded broker never outlives the demo, however the demo ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

CHILD = """
import sys, time
from kanban_terminal.adapters.embedded_broker import embedded_broker
with embedded_broker(True) as broker:
    print(broker.port, flush=True)
    time.sleep(120)
"""


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto not installed")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_killing_the_demo_stops_its_broker() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env={**os.environ}
    )
    try:
        assert demo.stdout is not None
        port = int(demo.stdout.readline())
        assert listening(port)
        demo.send_signal(signal.SIGKILL)  # no finally runs: only the kernel can stop the broker now
        demo.wait(timeout=10)
        deadline = time.monotonic() + 10
        while listening(port):
            assert time.monotonic() < deadline, "the demo's broker outlived the demo"
            time.sleep(0.05)
    finally:
        if demo.poll() is None:
            demo.kill()
