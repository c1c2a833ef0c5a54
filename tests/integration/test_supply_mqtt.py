"""Supplier warnings and re-routes over a real mosquitto, with the reference upstream peer (issue 18).

The peer warns (`delay_every`), the terminal's inbound worker applies it; a team lead's re-route
sends the cancel and the new request through the outbox, and the peer stops serving the cancelled
request and answers `cancelled`, which ends the re-sending.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.adapters.wire import RequestCancelMessage, RequestMessage
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.reroute import reroute_loop
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.supplier_trouble import promised_arrivals
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.topics import LineTopics
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import Recorder, publish_raw, settings_for, wait_for
from tests.support.supply_lines import supply_config, team_lead

pytestmark = pytest.mark.broker
TOPICS = LineTopics("S1", "L1")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    config, _ = supply_config(tmp_path)
    t = Terminal.open(config, tmp_path / "data")
    yield t
    t.close()


def q(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_a_delayed_status_from_the_peer_reaches_the_card_with_its_new_eta(
    mosquitto: Mosquitto, terminal: Terminal, tmp_path: Path
) -> None:
    warns = UpstreamSettings(
        accept_after_s=0, pick_after_s=30, ship_after_s=60, transit_s=60, delay_every=1, delay_s=600,
        at_risk_every=1,
    )  # fmt: skip
    settings = settings_for(mosquitto.port)
    with (
        UpstreamPeer(settings, "S1", warns, tmp_path / "peer.db") as peer,
        TerminalServices(terminal, settings) as services,
    ):
        wait_for(lambda: services.subscribed() and peer.link.subscribed)
        before = datetime.now(UTC)
        rid = record_scan(terminal, "C00001", source="test").request_id
        wait_for(lambda: q(terminal.db.path, "SELECT count(*) FROM card_log WHERE event IN ('delayed', "
                           "'at_risk')") == [(2,)], what="both warnings applied")  # fmt: skip
        (promise,) = promised_arrivals(terminal, "LP0")
        assert promise.request_id == rid and promise.trouble in ("delayed", "at_risk")
        # The peer's new ETA: ship (60 s) + delay (600 s) + transit (60 s) after it took the request.
        assert promise.eta is not None
        assert before + timedelta(seconds=700) < promise.eta < datetime.now(UTC) + timedelta(seconds=730)
        assert q(terminal.db.path, "SELECT state FROM card WHERE id = 'C00001'") == [("accepted",)]
        assert q(terminal.db.path, "SELECT trouble_at IS NOT NULL FROM replenishment_request WHERE id = ?",
                 rid) == [(1,)]  # fmt: skip


def test_a_reroute_cancels_upstream_and_raises_at_the_second_source_through_the_outbox(
    mosquitto: Mosquitto, terminal: Terminal, tmp_path: Path
) -> None:
    slow = UpstreamSettings(accept_after_s=0, pick_after_s=60, ship_after_s=120, transit_s=60)
    settings = settings_for(mosquitto.port)
    requests = Recorder(mosquitto.port, TOPICS.requests)
    with (
        UpstreamPeer(settings, "S1", slow, tmp_path / "peer.db") as peer,
        TerminalServices(terminal, settings) as services,
    ):
        wait_for(lambda: services.subscribed() and peer.link.subscribed)
        old = record_scan(terminal, "C00001", source="test").request_id
        wait_for(lambda: q(terminal.db.path, "SELECT state FROM card WHERE id = 'C00001'") == [("accepted",)])

        done = reroute_loop(terminal, "LP0", source="test", auth=team_lead(terminal), note="flood")
        assert done.ok
        ((card, cancelled, new),) = done.moved
        assert (card, cancelled) == ("C00001", old)
        wait_for(lambda: q(terminal.db.path, "SELECT answered_at IS NOT NULL FROM request_cancel") == [(1,)],
                 what="upstream confirmed the cancel")  # fmt: skip
        wait_for(lambda: any(m.get("id") == new for _, m, _ in requests.messages), what="the new request")
        sent = [m for _, m, _ in requests.messages]
        cancel = next(m for m in sent if m.get("type") == "cancel")
        RequestCancelMessage.model_validate(cancel)  # what went out is what docs/schema promises
        assert (cancel["id"], cancel["replaced_by"], cancel["source"], cancel["card"]) == (
            old,
            new,
            "SM1",
            card,
        )
        raised = next(m for m in sent if m.get("id") == new)
        RequestMessage.model_validate(raised)
        assert (raised["card"], raised["source"], raised["loop"]) == ("C00001", "SM2", "LP0")
        assert peer.cancelled == 1
        # The peer will not pick or ship the cancelled request: its pending answers are gone (only
        # `cancelled` may still be marked unsent for a moment: the peer marks it after publishing).
        unsent = "SELECT stage FROM answer WHERE request_id = ? AND sent = 0 AND stage != 'cancelled'"
        assert q(tmp_path / "peer.db", unsent, old) == []
        assert q(tmp_path / "peer.db", "SELECT last_status FROM request WHERE id = ?", old) == [
            ("cancelled",)
        ]
        wait_for(lambda: q(terminal.db.path, "SELECT state FROM card WHERE id = 'C00001'") == [("accepted",)],
                 what="the second source accepted the new request")  # fmt: skip
        assert q(terminal.db.path, "SELECT open_request_id FROM card WHERE id = 'C00001'") == [(new,)]
    requests.close()


def test_a_weighing_bin_sensor_reports_a_short_delivery_and_the_shortfall_goes_upstream(
    mosquitto: Mosquitto, terminal: Terminal
) -> None:
    requests = Recorder(mosquitto.port, TOPICS.requests)

    def signal(seq: int, kind: str, **extra: object) -> tuple[str, bytes]:
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        payload = {"v": 1, "id": f"BS00001:b1:{seq}", "device": "BS00001", "boot": "b1", "seq": seq,
                   "type": f"bin_{kind}", "at": at, **extra}  # fmt: skip
        return TOPICS.device_signal("BS00001"), json.dumps(payload).encode()

    with TerminalServices(terminal, settings_for(mosquitto.port)) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        # One at a time: in one signal group the request would be raised and delivered in the same
        # transaction, and never published (the relay sends only open requests).
        publish_raw(mosquitto.port, [signal(1, "empty")])
        wait_for(lambda: len(requests.messages) == 1, what="the request published")
        publish_raw(mosquitto.port, [signal(2, "full", short=4), signal(3, "empty", short=1)])
        wait_for(lambda: len(requests.messages) == 2, what="the shortfall published")
        first, shortfall = (m for _, m, _ in requests.messages)
        assert (first["card"], first["quantity"], shortfall["card"], shortfall["quantity"]) == (
            "C00001", 10, "C00001", 4)  # fmt: skip
        rows = q(
            terminal.db.path, "SELECT short_qty, shortfall_of FROM replenishment_request ORDER BY loop_seq"
        )
        assert rows == [(4, None), (None, first["id"])]
        # `short` on an empty signal is refused by the schema and kept for maintenance.
        refused = "SELECT count(*) FROM rejected_input WHERE reason LIKE '%short%'"
        wait_for(lambda: q(terminal.db.path, refused) == [(1,)], what="the refusal kept")
    requests.close()


def test_a_cancel_nobody_answers_is_sent_again_until_upstream_says_cancelled(
    mosquitto: Mosquitto, terminal: Terminal
) -> None:
    requests = Recorder(mosquitto.port, TOPICS.requests)
    with TerminalServices(terminal, settings_for(mosquitto.port, republish_after_s=1)) as services:
        wait_for(lambda: services.subscribed(), what="link up")
        old = record_scan(terminal, "C00001", source="test").request_id
        done = reroute_loop(terminal, "LP0", source="test", auth=team_lead(terminal))
        assert done.ok

        def attempts() -> list[int]:
            return [m["attempt"] for _, m, _ in requests.messages if m.get("type") == "cancel"]

        wait_for(lambda: attempts()[:2] == [1, 2], what="the cancel sent again")
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        answer = {"v": 1, "id": "c-1", "request_id": old, "status": "cancelled", "at": at}
        publish_raw(mosquitto.port, [(TOPICS.status, json.dumps(answer).encode())])
        wait_for(lambda: q(terminal.db.path, "SELECT answered_at IS NOT NULL FROM request_cancel") == [(1,)])
    requests.close()
