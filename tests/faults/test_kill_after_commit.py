"""R7: the terminal dies right after committing a group of signals and before acknowledging them.

The one instant a random SIGKILL rarely hits: the signals are in the database, the broker still
holds them as unacknowledged, so after the restart it delivers them again. The launcher
tests/support/serve_with_kill.py (the runtime's `after_group_commit` hook) kills `serve` exactly
there, `kills` times in a row; each restarted terminal must see redelivered copies, apply none of
them twice, and go on with the rest.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kanban_terminal.services.terminal import Terminal
from tests.faults import support
from tests.faults.support import query, signal_at, signal_payload
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, publish_raw, wait_for
from tests.support.serve_with_kill import KILLED

pytestmark = pytest.mark.broker
SENSORS = 10


def run_kills_after_commit(tmp_path: Path, *, signals: int, kills: int) -> dict[str, int]:
    """Publish `signals`, kill `serve` after its first commit `kills` times, then run it through,
    publish a tenth of them again (sensor retries) and 50 new ones; reconcile. Returns figures."""
    later_n = 50
    config, config_path = make_config(tmp_path, loops=2, cards=20, sensors=SENSORS)
    data = tmp_path / "data"
    Terminal.open(config, data).close()
    db = data / "terminal.db"
    broker = Mosquitto(tmp_path / "broker").start()
    log = tmp_path / "serve.log"
    base = datetime.now(UTC) - timedelta(hours=1)
    sent = []
    for n in range(signals + later_n):  # each sensor empties and refills its bin in turn
        dev_no, seq = n % SENSORS + 1, n // SENSORS
        kind = "empty" if seq % 2 == 0 else "full"
        sent.append(signal_payload(f"BS{dev_no:05d}", seq, kind, signal_at(base, dev_no, seq)))
    sent, later = sent[:signals], sent[signals:]
    repeats = random.Random(7).sample(sent, signals // 10)
    redelivered_runs = 0
    serve = None
    try:
        for kill in range(kills):
            mark = len(log.read_bytes()) if log.exists() else 0
            before = query(db, "SELECT count(*) FROM inbound_signal")[0][0]
            serve = support.serve(config_path, data, broker.port, log, kill_after_commits=1)
            if kill == 0:
                wait_for(lambda: b"MQTT link subscribed to" in log.read_bytes(), what="terminal subscribed")
                publish_raw(broker.port, sent, client_id="sensors")
            assert serve.wait(timeout=60) == -9, "the fault hook did not kill serve"
            assert query(db, "SELECT count(*) FROM inbound_signal")[0][0] >= before
            # From the second run on nothing new was published: a repeat can only be the broker
            # redelivering what the last run committed and never acknowledged.
            redelivered_runs += kill > 0 and b"already applied (redelivered)" in log.read_bytes()[mark:]
        mark = len(log.read_bytes())
        serve = support.serve(config_path, data, broker.port, log)
        wait_for(lambda: b"MQTT link subscribed to" in log.read_bytes()[mark:], what="terminal back")
        publish_raw(broker.port, later + repeats, client_id="sensors")  # the line goes on, with repeats
        wait_for(lambda: query(db, "SELECT count(*) FROM inbound_signal")[0][0] == signals + later_n,
                 timeout=120, what="every signal applied after the restarts")  # fmt: skip
    finally:
        support.stop(serve)
        broker.stop()
    text = log.read_bytes()
    assert text.count(KILLED.encode()) == kills
    assert redelivered_runs == kills - 1 or kills == 1, redelivered_runs
    assert b"already applied (redelivered)" in text
    # Nothing applied twice: every signal's log rows (found by source and device time) come once.
    doubled = query(
        db,
        "SELECT source, occurred_at, event, count(*) FROM card_log WHERE source LIKE 'mqtt:%' "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert doubled == []
    events = query(db, "SELECT count(*) FROM card_log WHERE event IN ('bin_empty', 'bin_full')")[0][0]
    assert events >= (signals + later_n) // 2, events  # the signals did something, once
    return {"signals": signals + later_n, "kills": kills, "runs_with_redeliveries": redelivered_runs,
            "repeats_published": len(repeats), "doubled": len(doubled)}  # fmt: skip


def test_a_kill_between_commit_and_ack_applies_nothing_twice(tmp_path: Path) -> None:
    figures = run_kills_after_commit(tmp_path, signals=200, kills=2)
    assert figures["runs_with_redeliveries"] == 1
