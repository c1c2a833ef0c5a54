"""R7: the terminal dies right after committing a group of signals and before acknowledging them.

The one instant a random SIGKILL rarely hits: the signals are in the database, the broker still
holds them as unacknowledged, so after the restart it delivers them again. The fault hook
(KANBAN_FAULT_KILL_AFTER_COMMITS) kills `serve` exactly there. The restarted terminal must see
the redelivered copies, apply none of them twice, and go on with the rest.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.services.runtime import KILL_AFTER_COMMITS_ENV
from kanban_terminal.services.terminal import Terminal
from tests.faults import support
from tests.faults.support import query, signal_at, signal_payload
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, wait_for

pytestmark = pytest.mark.broker
SENSORS = 10
SIGNALS = 200
LATER = 50


def test_a_kill_between_commit_and_ack_applies_nothing_twice(tmp_path: Path) -> None:
    config, config_path = make_config(tmp_path, loops=2, cards=20, sensors=SENSORS)
    data = tmp_path / "data"
    Terminal.open(config, data).close()
    db = data / "terminal.db"
    broker = Mosquitto(tmp_path / "broker").start()
    log = tmp_path / "serve.log"
    base = datetime.now(UTC) - timedelta(hours=1)
    # Each sensor empties and refills its bin in turn; after the restart 10 % of the first batch
    # is published again as well, the duplicates a sensor's own retry produces.
    sent = []
    for n in range(SIGNALS + LATER):
        dev_no, seq = n % SENSORS + 1, n // SENSORS
        device = f"BS{dev_no:05d}"
        sent.append(
            signal_payload(device, seq, "empty" if seq % 2 == 0 else "full", signal_at(base, dev_no, seq))
        )
    sent, later = sent[:SIGNALS], sent[SIGNALS:]
    extra = random.Random(7).sample(sent, SIGNALS // 10)
    serve = support.serve(config_path, data, broker.port, log, {KILL_AFTER_COMMITS_ENV: "1"})
    try:
        wait_for(lambda: b"MQTT link subscribed to" in log.read_bytes(), what="terminal subscribed")
        publish_raw(broker.port, sent, client_id="sensors")
        assert serve.wait(timeout=60) == -9, "the fault hook did not kill serve"
        committed = query(db, "SELECT count(*) FROM inbound_signal")[0][0]
        assert committed > 0, "killed before any commit: not the instant under test"
        mark = len(log.read_bytes())
        serve = support.serve(config_path, data, broker.port, log)
        # Nothing else is published yet: a repeat now can only be the broker redelivering the
        # group the hook killed between its commit and its acks.
        wait_for(lambda: b"already applied (redelivered)" in log.read_bytes()[mark:], what="redeliveries")
        publish_raw(broker.port, later + extra, client_id="sensors")  # the line goes on, with repeats
        wait_for(lambda: query(db, "SELECT count(*) FROM inbound_signal")[0][0] == SIGNALS + LATER,
                 timeout=60, what="every signal applied after the restart")  # fmt: skip
    finally:
        support.stop(serve)
        broker.stop()
    assert b"killed after a commit, before its acks" in log.read_bytes()
    # Nothing applied twice: every signal's log rows (found by source and device time) come once.
    doubled = query(
        db,
        "SELECT source, occurred_at, event, count(*) FROM card_log WHERE source LIKE 'mqtt:%' "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert doubled == []
    events = query(db, "SELECT count(*) FROM card_log WHERE event IN ('bin_empty', 'bin_full')")[0][0]
    assert events >= (SIGNALS + LATER) // 2, events  # the signals did something, once
