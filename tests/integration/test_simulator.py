"""The device simulator on a real pty: what it remembers of the host's frames stays bounded."""

from __future__ import annotations

import os

import pytest

from firmware_bridge.framing import Frame, FrameType, encode
from firmware_bridge.simulator import RECEIVED_KEPT, DeviceSimulator

pytestmark = pytest.mark.pty


def test_the_simulator_keeps_the_newest_host_frames_only() -> None:
    sim = DeviceSimulator("D1")
    path = sim.open()
    host = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        total = RECEIVED_KEPT + 500  # well below the 16-bit seq wrap: each frame's arg is its seq
        frames = b"".join(encode(Frame("D1", FrameType.ACK, "0000BEEF", n, (str(n),))) for n in range(total))
        for start in range(0, len(frames), 4096):
            os.write(host, frames[start : start + 4096])
        # In order: once the newest is in, so is everything before it.
        newest = sim.wait_for(lambda f: f.args == (str(total - 1),), timeout=20)
        assert newest is not None
        assert len(sim.received) == RECEIVED_KEPT
        assert sim.received[-1] == newest
        assert sim.received[0].args == (str(500),)
    finally:
        os.close(host)
        sim.stop()
