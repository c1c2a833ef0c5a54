"""A commit that stalls on paho's thread must not cost the MQTT link its keepalive (issue 19 review).

paho's thread commits the groups it read (runtime/inbound.py); while it commits it sends no PINGREQ,
and the broker drops a client it has not heard from for 1.5 x keepalive. After a slow group the
next ones go to the worker thread until commits are fast again (runtime/keepalive_guard.py), so a
degrading disk stalls the worker, not the link; the first stall on paho's thread cannot be
interrupted, and if it outlasts the broker's patience the link drops and nothing is lost or
doubled. Real broker (its own log says what it saw), real SQLite file, the real runtime; the slow
disk is a stall injected into the group's flush (as bench/slow_fsync.c slows every fsync).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.scan_repo import ScanStore
from tests.integration.test_inbound_thread import committing_threads, requests_in_seq_order, signals
from tests.support.mosquitto import running_mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, settings_for, wait_for

pytestmark = pytest.mark.broker

PAHO = "paho-mqtt-client"
WORKER = "mqtt-inbound"


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = make_config(tmp_path, loops=1, cards=30, sensors=30)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


class SlowDisk:
    """The next flush on an inbound thread stalls (one stall each): for so many seconds, or until
    an event is set. A group may flush more than once: arm the next stall after its group."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stalls: list[float | threading.Event] = []
        self.stalled_on: list[str] = []
        self.stalling = threading.Event()
        real = ScanStore.flush

        def flush(store: ScanStore) -> None:
            name = threading.current_thread().name
            if self.stalls and (name.startswith(PAHO) or name == WORKER):
                stall = self.stalls.pop(0)
                self.stalled_on.append(name)
                self.stalling.set()
                if isinstance(stall, threading.Event):
                    assert stall.wait(60), "the test never released the stalled commit"
                else:
                    threading.Event().wait(stall)  # the disk's stall (a fault injected, no sync)
                self.stalling.clear()
            real(store)

        monkeypatch.setattr(ScanStore, "flush", flush)


def broker_lines(broker_home: Path, text: str) -> int:
    return (broker_home / "mosquitto.log").read_text(errors="replace").count(text)


def test_after_a_slow_commit_the_next_groups_go_to_the_worker_until_commits_are_fast(
    tmp_path: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keepalive 10 s: a group that held its thread over 1 s (a tenth) sends the next to the worker
    thread; the worker keeps them while its commits are slow, and once one is fast paho's thread
    commits again. Each signal applied once, in order, and the link never dropped."""
    disk = SlowDisk(monkeypatch)
    names, options = committing_threads()
    with (
        running_mosquitto(tmp_path / "broker") as broker,
        TerminalServices(terminal, settings_for(broker.port, keepalive_s=10), options) as services,
    ):
        guard = services.inbound.guard
        assert guard is not None and guard.slow_s == 1.0
        wait_for(lambda: services.subscribed(), what="link up")
        for n, stall in ((1, 1.5), (2, 1.5), (3, None), (4, None)):
            if stall is not None:
                disk.stalls.append(stall)
            publish_raw(broker.port, signals(n, n), client_id=f"tester{n}")
            wait_for(lambda n=n: services.signals_applied == n, what=f"signal {n} applied")
        assert disk.stalled_on[0].startswith(PAHO) and disk.stalled_on[1] == WORKER, disk.stalled_on
        assert [n.startswith(PAHO) for n in names] == [True, False, False, True], names
        assert names[1:3] == [WORKER, WORKER]
        assert guard.slow_groups == 2 and not guard.slow
        assert services.link is not None and services.link.generation == 1
        assert services.signals_duplicate == 0
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 5)]


def test_while_the_worker_is_stalled_past_the_keepalive_the_link_keeps_its_pings(
    tmp_path: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keepalive 2 s (the floor): after one slow group on paho's thread, the next group's commit
    stalls on the worker thread until the broker has answered two more PINGREQs (over 1.5 x
    keepalive, when a stalled paho thread lost the link). The link is never dropped: the broker
    times nobody out, no reconnect, the signal applied once."""
    disk = SlowDisk(monkeypatch)
    names, options = committing_threads()
    release = threading.Event()
    with (
        running_mosquitto(tmp_path / "broker", extra="log_type all") as broker,
        TerminalServices(terminal, settings_for(broker.port, keepalive_s=2), options) as services,
    ):
        link = services.link
        assert link is not None
        wait_for(lambda: services.subscribed(), what="link up")
        disk.stalls.append(0.5)  # a tenth of the keepalive is 0.2 s
        publish_raw(broker.port, signals(1, 1))
        wait_for(lambda: services.signals_applied == 1, what="signal 1 applied (slowly)")
        disk.stalls.append(release)
        publish_raw(broker.port, signals(2, 2), client_id="tester2")
        wait_for(lambda: len(disk.stalled_on) == 2 and disk.stalling.is_set(), what="commit 2 stalled")
        pings = f"Sending PINGRESP to {link.client_id}"
        before = broker_lines(broker.home, pings)
        try:
            wait_for(
                lambda: broker_lines(broker.home, pings) >= before + 2,
                what="two ping round trips while the commit is stalled",
            )
        finally:
            release.set()
        wait_for(lambda: services.signals_applied == 2, what="signal 2 applied")
        assert disk.stalled_on == [disk.stalled_on[0], WORKER] and disk.stalled_on[0].startswith(PAHO)
        assert link.generation == 1 and link.connected
        assert broker_lines(broker.home, "exceeded timeout") == 0
        assert services.signals_duplicate == 0
    assert requests_in_seq_order(terminal) == ["C00001", "C00002"]


def test_a_first_stall_longer_than_the_brokers_patience_drops_the_link_and_loses_nothing(
    tmp_path: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What remains: the first slow commit runs on paho's thread and cannot be interrupted (fsync).
    Held until the link is gone (keepalive 2 s: the broker times the terminal out, or the link's
    watchdog, which hears nothing either, closes it), it costs the link: the broker redelivers the
    signal on the new connection, the dedupe key absorbs it, one request in all."""
    disk = SlowDisk(monkeypatch)
    release = threading.Event()
    with (
        running_mosquitto(tmp_path / "broker") as broker,
        TerminalServices(terminal, settings_for(broker.port, keepalive_s=2)) as services,
    ):
        link = services.link
        assert link is not None
        wait_for(lambda: services.subscribed(), what="link up")
        disk.stalls.append(release)
        publish_raw(broker.port, signals(1, 1))
        wait_for(disk.stalling.is_set, what="the commit stalled")
        # The broker times the silent terminal out after 1.5 x keepalive; the link's own watchdog may
        # close it first (nothing read for 2 x keepalive + 1 s: paho's thread reads nothing either).
        dropped = (f"Client {link.client_id} has exceeded timeout", f"Client {link.client_id} closed its")
        try:
            wait_for(
                lambda: sum(broker_lines(broker.home, line) for line in dropped) == 1,
                what="the broker timing the terminal out, or the terminal closing the link",
            )
        finally:
            release.set()
        assert disk.stalled_on[0].startswith(PAHO)
        wait_for(lambda: services.signals_duplicate == 1, what="the redelivery absorbed")
        assert link.generation == 2 and services.signals_applied == 1
    assert requests_in_seq_order(terminal) == ["C00001"]


def test_signals_that_flow_for_longer_than_a_keepalive_all_commit_on_pahos_thread(
    tmp_path: Path, terminal: Terminal
) -> None:
    """The slack rule counts the PUBACKs that flow with the signals as packets the broker heard.
    paho stamps only its PINGREQs as sent: counted from those, every group after half a keepalive
    past a ping went to the worker (a third of them at 500 signals/s). keepalive 2 s, a signal every
    0.2 s for over two keepalives: every group commits on paho's thread, except one that follows a
    commit slower than 0.2 s (the slow-disk rule, `SLOW_GROUP` x keepalive: this VM's disk stalls
    0.2-0.5 s now and then; a fresh-clone CI run met one: 24 groups on paho's thread, 1 after it)."""
    names, options = committing_threads()
    with (
        running_mosquitto(tmp_path / "broker") as broker,
        TerminalServices(terminal, settings_for(broker.port, keepalive_s=2), options) as services,
    ):
        wait_for(lambda: services.subscribed(), what="link up")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pacer", protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", broker.port, 5)
        pub.loop_start()
        try:
            for topic, payload in signals(1, 25):
                pub.publish(topic, payload, qos=1).wait_for_publish(5)
                threading.Event().wait(0.2)  # the workload's pace, not a synchronisation
        finally:
            pub.disconnect()
            pub.loop_stop()
        wait_for(lambda: services.signals_applied == 25, what="every signal applied")
        guard = services.inbound.guard
        assert guard is not None and names
        handed_over = sum(not n.startswith(PAHO) for n in names)
        assert handed_over <= guard.slow_groups, (Counter(names), guard.slow_groups)
    assert requests_in_seq_order(terminal) == [f"C{n:05d}" for n in range(1, 26)]
