"""Scans read while the screen's runtime is opening are held, then recorded once, oldest first
(tui/boot.py `EarlyReads`): also those that arrive while the held ones are being recorded."""

from __future__ import annotations

import threading

from kanban_terminal.tui.boot import EarlyReads


def test_reads_are_held_until_drained_then_go_straight_through() -> None:
    reads: EarlyReads[str] = EarlyReads()
    assert reads.hold("A") and reads.hold("B")
    recorded: list[str] = []
    reads.drain(recorded.append)
    assert recorded == ["A", "B"]
    assert reads.hold("C") is False  # the caller records it itself now
    assert reads.held() == 0


def test_a_read_arriving_during_the_drain_waits_behind_the_held_ones() -> None:
    reads: EarlyReads[str] = EarlyReads()
    reads.hold("A")
    reads.hold("B")
    recording_a, let_go = threading.Event(), threading.Event()
    recorded: list[str] = []

    def record(read: str) -> None:
        if read == "A":
            recording_a.set()
            assert let_go.wait(10)
        recorded.append(read)

    drainer = threading.Thread(target=reads.drain, args=(record,))
    drainer.start()
    assert recording_a.wait(10)
    assert reads.hold("C") is True  # still draining: C must not overtake B
    let_go.set()
    drainer.join(10)
    assert recorded == ["A", "B", "C"]
    assert reads.hold("D") is False


def test_one_read_that_fails_does_not_keep_the_others_waiting() -> None:
    reads: EarlyReads[str] = EarlyReads()
    for read in ("A", "bad", "C"):
        reads.hold(read)
    recorded: list[str] = []

    def record(read: str) -> None:
        if read == "bad":
            raise RuntimeError("disk full")
        recorded.append(read)

    reads.drain(record)
    assert recorded == ["A", "C"]
    assert reads.hold("D") is False


def test_given_open_nothing_is_held() -> None:
    assert EarlyReads[str](held=False).hold("A") is False
