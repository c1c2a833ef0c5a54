"""Supermarket peers and raw requests for the topology tests (issue 16).

`request_message` writes a valid request as a terminal would, so a test can send hundreds, and the
same id again as a re-send; `picked_by` reads each peer's own SQLite file to say which peer picked
(scheduled answers for) which request, the fact "exactly once" is about.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.mqtt_settings import MqttSettings
from kanban_terminal.peer_settings import PeerOwnership
from kanban_terminal.topics import LineTopics


def request_message(
    request_id: str, n: int, *, line: str = "L1", loop: str | None = None, attempt: int = 1
) -> tuple[str, bytes]:
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {
        "v": 1,
        "id": request_id,
        "site": "S1",
        "line": line,
        "terminal": f"{line}-T1",
        "loop": loop or f"LP{n % 7}",
        "loop_seq": n // 7 + 1,
        "card": f"C{n:05d}",
        "part": "P-1",
        "quantity": 10,
        "station": "ST1",
        "point_of_use": "rack",
        "source": "SM1",
        "raised_at": at,
        "due_at": at,
        "attempt": attempt,
    }
    return LineTopics("S1", line).requests, json.dumps(body).encode()


def new_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def fast_peer(ownership: PeerOwnership | None = None, **times: float) -> UpstreamSettings:
    """Answers at once (or after `times`), so a test waits for the broker, not for a picker."""
    values: dict[str, object] = {"accept_after_s": 0, "pick_after_s": 0, "ship_after_s": 0, "transit_s": 0}
    values |= times
    if ownership is not None:
        values["ownership"] = ownership
    return UpstreamSettings.model_validate(values)


def partition_peers(settings: MqttSettings, tmp_path: Path) -> list[UpstreamPeer]:
    """Two fast peers, p0 and p1, each owning one of two partitions by config (no shared subscription)."""
    return [
        UpstreamPeer(
            settings,
            "S1",
            fast_peer(PeerOwnership(mode="partition", partitions=2, partition=i)),
            tmp_path / f"p{i}.db",
            instance=f"p{i}",
        )
        for i in range(2)
    ]


def picked_by(db: Path) -> set[str]:
    """Request ids a peer scheduled answers for: the requests it picks."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {r[0] for r in con.execute("SELECT DISTINCT request_id FROM answer")}
    finally:
        con.close()


def shipped_acked(db: Path) -> set[str]:
    """Request ids whose `shipped` answer the broker acknowledged to this peer."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {r[0] for r in con.execute("SELECT request_id FROM answer WHERE stage='shipped' AND sent=1")}
    finally:
        con.close()
