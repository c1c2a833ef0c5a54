"""Which thread applies what the terminal receives, and what happens when storage will not take it.

Received messages are applied on paho's own thread once its socket is drained (runtime/inbound.py:
no hand-off per signal). A storage step that fails there, or a write turn held by a long writer,
must not hold paho's thread: the worker thread takes the messages over, in order, applies each
exactly once, and paho's thread applies again once the worker has nothing left. Real broker, real
SQLite file, the real runtime.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kanban_terminal.runtime import RuntimeOptions, TerminalServices
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.scan_repo import ScanStore
from kanban_terminal.storage.sqlite_file import BUSY_TIMEOUT_MS
from tests.faults.support import signal_payload
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, settings_for, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = make_config(tmp_path, loops=1, cards=20, sensors=20)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


def signals(first: int, last: int) -> list[tuple[str, bytes]]:
    at = datetime.now(UTC)
    return [signal_payload(f"BS{n:05d}", 1, "empty", at) for n in range(first, last + 1)]


def requests_in_seq_order(terminal: Terminal) -> list[str]:
    con = sqlite3.connect(terminal.db.path)
    try:
        return [r[0] for r in con.execute("SELECT card_id FROM replenishment_request ORDER BY loop_seq")]
    finally:
        con.close()


def committing_threads() -> tuple[list[str], RuntimeOptions]:
    names: list[str] = []
    return names, RuntimeOptions(after_group_commit=lambda _n: names.append(threading.current_thread().name))


def test_signals_are_applied_on_pahos_thread_without_a_hand_off(
    mosquitto: Mosquitto, terminal: Terminal
) -> None:
    names, options = committing_threads()
    with TerminalServices(terminal, settings_for(mosquitto.port), options) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        publish_raw(mosquitto.port, signals(1, 3))
        wait_for(lambda: services.signals_applied == 3, what="signals applied")
    assert names and all(n.startswith("paho-mqtt-client") for n in names), names
    assert requests_in_seq_order(terminal) == ["C00001", "C00002", "C00003"]


def test_a_storage_error_on_pahos_thread_hands_the_group_to_the_worker_in_order(
    mosquitto: Mosquitto, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first group's write fails once (a full disk for a moment): nothing of it is committed or
    acknowledged on paho's thread; the worker thread applies it and what came after it, once each,
    in arrival order; afterwards paho's thread applies again."""
    real = ScanStore.flush
    failures = {"left": 1}

    def flush_fails_once(*args: object, **kwargs: object) -> object:
        if failures["left"] and threading.current_thread().name.startswith("paho-mqtt-client"):
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ScanStore, "flush", flush_fails_once)
    names, options = committing_threads()
    with TerminalServices(terminal, settings_for(mosquitto.port), options) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        publish_raw(mosquitto.port, signals(1, 4))
        wait_for(lambda: services.signals_applied == 4, what="signals applied after the failure")
        assert failures["left"] == 0 and "mqtt-inbound" in names
        # The worker has nothing left: the next signals are paho's thread's again.
        wait_for(lambda: services.inbound.waiting == 0 and not services.inbound.on_worker, what="worker done")
        first_after = len(names)
        publish_raw(mosquitto.port, signals(5, 6))
        wait_for(lambda: services.signals_applied == 6, what="signals after recovery")
        assert all(n.startswith("paho-mqtt-client") for n in names[first_after:]), names
        assert services.signals_duplicate == 0  # nothing committed twice, nothing redelivered
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 7)]


def test_a_worker_whose_prune_fails_still_applies_what_it_is_handed(
    mosquitto: Mosquitto, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hourly prune runs on the worker thread, which paho's thread hands its group to when the
    prune is due. A prune that fails in a way storage errors do not cover must not end that thread:
    the group would wait there, unacknowledged, until a restart."""
    from kanban_terminal.runtime import inbound

    def broken_prune(_terminal: Terminal) -> None:
        raise RuntimeError("prune broke")

    monkeypatch.setattr(inbound, "prune_signals", broken_prune)
    with TerminalServices(terminal, settings_for(mosquitto.port)) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        publish_raw(mosquitto.port, signals(1, 2))
        wait_for(lambda: services.signals_applied == 2, what="signals applied")
        services.inbound._next_prune = 0.0  # an hour on: the next group goes to the worker first
        publish_raw(mosquitto.port, signals(3, 4))
        wait_for(lambda: services.signals_applied == 4, what="signals applied after the failed prune")
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 5)]


def test_a_long_writer_does_not_hold_pahos_thread(mosquitto: Mosquitto, terminal: Terminal) -> None:
    """While another part of the process holds the write turn (a backup, a restore), paho's thread
    keeps reading: every signal sent meanwhile is received and waits, in order; once the turn is
    free the worker applies them all, once each."""
    names, options = committing_threads()
    with TerminalServices(terminal, settings_for(mosquitto.port), options) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        turn = terminal.db.write_lock
        turn.acquire()
        try:
            publish_raw(mosquitto.port, signals(1, 5))
            # Held on paho's thread, one message would wait in `drain` and four in the socket.
            wait_for(
                lambda: services.inbound.waiting == 5 and services.inbound.on_worker,
                what="all five received and with the worker while the turn is held",
            )
            assert services.signals_applied == 0
        finally:
            turn.release()
        wait_for(lambda: services.signals_applied == 5, what="applied once the turn is free")
        assert "mqtt-inbound" in names
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 6)]


def test_another_processs_write_lock_does_not_hold_pahos_thread(
    mosquitto: Mosquitto, terminal: Terminal
) -> None:
    """A CLI verb or a restore in another process holds SQLite's write lock: paho's thread gives up
    after a short wait and hands the group to the worker (which waits the full busy timeout), so
    the link keeps reading meanwhile; once the lock is gone every signal is applied once, in order."""
    other = sqlite3.connect(terminal.db.path, isolation_level=None)
    with TerminalServices(terminal, settings_for(mosquitto.port)) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        other.execute("BEGIN IMMEDIATE")
        try:
            publish_raw(mosquitto.port, signals(1, 5))
            # Held on paho's thread for SQLite's 10 s busy timeout, four would wait in the socket
            # until it ran out: well before it, all five are with the worker (~0.1 s here).
            wait_for(
                lambda: services.inbound.waiting == 5 and services.inbound.on_worker,
                timeout=BUSY_TIMEOUT_MS / 2000,
                what="all five received and with the worker while another process holds the lock",
            )
            assert services.signals_applied == 0
        finally:
            other.execute("ROLLBACK")
            other.close()
        wait_for(lambda: services.signals_applied == 5, what="applied once the lock is gone")
        assert services.signals_duplicate == 0
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 6)]
