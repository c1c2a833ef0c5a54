"""Card-log anchors over a real broker: the terminal publishes its log's head retained, the upstream
peer keeps it, and `verify-log --anchors` proves the log against the peer's store and the broker.

Then the log is cut behind the terminal's back (triggers dropped, last rows deleted): both sources
name the first missing row, while the chain alone still says intact.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kanban_terminal.adapters.upstream import UpstreamPeer
from kanban_terminal.cli import main
from kanban_terminal.config import UpstreamSettings
from kanban_terminal.domain.scans import Intent
from kanban_terminal.runtime import TerminalServices
from kanban_terminal.services.scanning import record_scan
from kanban_terminal.services.terminal import Terminal
from kanban_terminal.storage.tables import CardLogRow
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import make_config, settings_for, wait_for

pytestmark = pytest.mark.broker


def _head(db: Path) -> tuple[int, str]:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT id, hash FROM card_log ORDER BY id DESC LIMIT 1").fetchone()
    return int(row[0]), str(row[1])


def _shipped(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM card WHERE state = 'shipped'").fetchone()[0])


@contextmanager
def _line_and_peer(
    tmp_path: Path, mosquitto: Mosquitto, config: Any
) -> Iterator[tuple[Terminal, UpstreamPeer, Callable[[], bool]]]:
    """The terminal's services and an upstream peer on one broker, both subscribed; with the check
    "the peer's newest anchor is the log's head"."""
    settings = settings_for(mosquitto.port)
    fast = UpstreamSettings(accept_after_s=0, pick_after_s=0.1, ship_after_s=0.2, transit_s=60)
    terminal = Terminal.open(config, tmp_path / "data")
    name = config.terminal.id
    try:
        with (
            UpstreamPeer(settings, "S1", fast, tmp_path / "peer.db") as peer,
            TerminalServices(terminal, settings) as services,
        ):
            wait_for(lambda: services.subscribed() and peer.link.subscribed, what="both subscribed")

            def peer_has_head() -> bool:
                kept = peer.anchors.anchors_of(name)
                return bool(kept) and (kept[-1].row, kept[-1].hash) == _head(terminal.db.path)

            yield terminal, peer, peer_has_head
    finally:
        terminal.close()


def test_the_peer_keeps_the_anchor_and_verify_log_proves_the_log_with_it(
    tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    config, config_path = make_config(tmp_path, loops=2, cards=20, sensors=0)
    data = tmp_path / "data"
    name = config.terminal.id
    with _line_and_peer(tmp_path, mosquitto, config) as (terminal, peer, peer_has_head):
        for card in ("C00001", "C00002", "C00003"):
            record_scan(terminal, card, source="test", intent=Intent.EMPTY)
        wait_for(lambda: _shipped(terminal.db.path) == 3, what="three requests shipped")
        # The anchor follows the log: the peer's newest anchor is the head after the last status.
        wait_for(peer_has_head, timeout=30, what="the peer holds the log's head")
        kept = peer.anchors.anchors_of(name)
    head = _head(data / "terminal.db")
    assert kept[-1].key is not None and kept[-1].hash.startswith("k1:")
    cfg = ["--config", str(config_path), "--data-dir"]
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"

    assert main(["verify-log", *cfg, str(data), "--anchors", str(tmp_path / "peer.db")]) == 0
    assert f"rows 1 to {head[0]} are as they were" in capsys.readouterr().out
    assert main(["verify-log", *cfg, str(data), "--anchors", broker]) == 0
    assert f"rows 1 to {head[0]} are as they were" in capsys.readouterr().out

    cut = tmp_path / "cut"
    shutil.copytree(data, cut, ignore=shutil.ignore_patterns("*.lock"))
    with sqlite3.connect(cut / "terminal.db") as conn:
        conn.execute("DROP TRIGGER card_log_no_delete")
        conn.execute("DELETE FROM card_log WHERE id > ?", (head[0] - 3,))
    assert main(["verify-log", *cfg, str(cut)]) == 0  # the chain alone cannot see a cut tail
    capsys.readouterr()
    for source in (str(tmp_path / "peer.db"), broker):
        assert main(["verify-log", *cfg, str(cut), "--anchors", source]) == 1
        assert f"BROKEN at row id {head[0] - 2}:" in capsys.readouterr().out


def test_a_log_row_that_announces_nothing_is_anchored_too(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A runway warning with material calls off, a clock step, a badge log-in: each commits a log row
    and releases no event on the bus. The anchor must still follow the head within its coalescing
    gap, not `anchor_every_minutes` (15) later: a runway warning 5 s after the last status stayed
    unanchored so (found by the full suite on a loaded box)."""
    config, _ = make_config(tmp_path, loops=1, cards=4, sensors=0)
    with _line_and_peer(tmp_path, mosquitto, config) as (terminal, _, peer_has_head):
        wait_for(peer_has_head, timeout=30, what="the peer holds the log's first head")
        now = terminal.clock()
        step = CardLogRow(occurred_at=now, recorded_at=now, event="step", source="system", detail="t")
        with terminal.db.unit_of_work() as uow:  # as services/clock_watch.py logs a step
            uow.andons.log(step)
        wait_for(peer_has_head, timeout=30, what="the peer holds the silent row's head")
