"""Which thread applies what the terminal receives, and what happens when storage will not take it.

Received messages are applied on paho's own thread once its socket is drained (runtime/inbound.py:
no hand-off per signal). A storage step that fails there, or a write turn held by a long writer,
must not hold paho's thread: the worker thread takes the messages over, in order, applies each
exactly once, and paho's thread applies again once the worker has nothing left. Real broker, real
SQLite file, the real runtime.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kanban_terminal.runtime import RuntimeOptions, TerminalServices
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.scan_repo import ScanStore
from kanban_terminal.storage.sqlite_file import BUSY_TIMEOUT_MS
from tests.faults.support import signal_payload
from tests.support.mosquitto import Mosquitto, running_mosquitto
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


def fail_first_flush_on_paho(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The first group flushed on paho's thread fails as a full disk would (`_Deferred`: the worker
    thread takes that group and what follows); every later flush is real. Returns the failures
    left to inject (0 once it struck)."""
    real = ScanStore.flush
    failures = {"left": 1}

    def flush_fails_once(*args: object, **kwargs: object) -> object:
        if failures["left"] and threading.current_thread().name.startswith("paho-mqtt-client"):
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ScanStore, "flush", flush_fails_once)
    return failures


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
    failures = fail_first_flush_on_paho(monkeypatch)
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


class WatchedLock:
    """The ack gate's lock, made observable: says when a second thread had to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waited = threading.Event()

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self.waited.set()
            self._lock.acquire()

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


def stray_pubacks(broker_log: str, client_id: str) -> tuple[list[int], int]:
    """PUBACKs the broker got from `client_id` on its newest connection for a packet id it had not
    sent that connection (or more often than it sent it), and how many PUBACKs it got there."""
    connection = broker_log.split(f" as {client_id} (")[-1]
    sent: Counter[int] = Counter()
    strays: list[int] = []
    acks = 0
    for line in connection.splitlines():
        if m := re.search(rf"Sending PUBLISH to {re.escape(client_id)} \(d\d, q1, r\d, m(\d+),", line):
            sent[int(m[1])] += 1
        elif m := re.search(rf"Received PUBACK from {re.escape(client_id)} \(Mid: (\d+)", line):
            acks += 1
            if sent[int(m[1])] == 0:
                strays.append(int(m[1]))
            else:
                sent[int(m[1])] -= 1
    return strays, acks


def test_an_ack_of_an_old_connection_never_goes_out_on_the_new_one(
    tmp_path: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker thread acks a committed signal (its group was handed over by a failed flush on
    paho's thread) and is held between the connection check and the PUBACK while the link drops and
    paho's thread reconnects. The PUBACK must not go out on the new connection, where its packet id
    is the broker's redelivery (or, on a new session, another message not committed yet): the
    broker redelivers the four signals instead, and the dedupe keys make that a no-op.

    Deterministic: the worker waits until paho's thread is either waiting for the ack gate (the
    fix) or connected again (the race, as it was); the broker's own log (log_type all) says which
    PUBACK came in on which connection."""
    fail_first_flush_on_paho(monkeypatch)
    with (
        running_mosquitto(tmp_path / "broker", extra="log_type all") as broker,
        TerminalServices(terminal, settings_for(broker.port)) as services,
    ):
        link = services.link
        assert link is not None
        gate_lock = WatchedLock()
        link.acks._lock = gate_lock  # type: ignore[assignment]
        held, dropped = threading.Event(), threading.Event()
        held_generation: list[int] = []

        def hold_the_first_worker_ack() -> None:
            if held.is_set() or threading.current_thread().name != "mqtt-inbound":
                return
            held_generation.append(link.generation)
            held.set()
            # Between the check and the send: the test drops the link meanwhile.
            assert dropped.wait(20), "the test never dropped the link"
            wait_for(
                lambda: gate_lock.waited.is_set() or link.generation > held_generation[0],
                what="paho's thread waiting for the ack gate, or connected again",
            )

        link.acks.between_check_and_send = hold_the_first_worker_ack
        wait_for(lambda: services.subscribed(), what="link up")
        publish_raw(broker.port, signals(1, 4))
        wait_for(held.is_set, what="the worker holding its first ack")
        assert services.signals_applied >= 1  # its group committed before any ack
        sock = link.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        dropped.set()
        # Redelivered on the new connection (session kept), each a duplicate: applied once in all.
        wait_for(lambda: services.signals_duplicate == 4, what="the four redeliveries absorbed")
        assert link.generation == held_generation[0] + 1
        log_path = broker.home / "mosquitto.log"
        wait_for(
            lambda: stray_pubacks(log_path.read_text(errors="replace"), link.client_id)[1] >= 4,
            what="the redeliveries' PUBACKs at the broker",
        )
        strays, _ = stray_pubacks(log_path.read_text(errors="replace"), link.client_id)
        assert strays == [], f"PUBACKs of the old connection went out on the new one: {strays}"
        assert services.signals_applied == 4
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 5)]
