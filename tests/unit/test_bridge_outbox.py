"""The bridge's outbox: sent events wait out a replay window, then go; an old outbox file upgrades."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from firmware_bridge.outbox import Outbox


def test_sent_events_are_kept_for_the_window_replayed_on_request_then_pruned(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    first, second = box.add("t", b"1"), box.add("t", b"2")
    box.done(first, now=100.0, keep_s=10)
    assert [e[0] for e in box.pending(10, set())] == [second] and len(box) == 1
    assert box.replay_recent(window_s=10) == 1  # the broker's last answer: sent again
    assert [e[0] for e in box.pending(10, set())] == [first, second]
    box.done(first, now=106.0, keep_s=10)
    box.done(second, now=120.0, keep_s=10)  # marks `first` (106) too old to keep: pruned
    assert box.replay_recent(window_s=10) == 1 and [e[0] for e in box.pending(10, set())] == [second]
    box.close()


def test_the_window_counts_back_from_the_last_acknowledgement_not_from_the_reconnect(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    old, late, last = box.add("t", b"1"), box.add("t", b"2"), box.add("t", b"3")
    box.done(old, now=100.0, keep_s=60)
    box.done(late, now=195.0, keep_s=60)
    box.done(last, now=200.0, keep_s=60)  # then the broker dies, and is back only minutes later
    assert box.replay_recent(window_s=0) == 0  # turned off
    assert box.replay_recent(window_s=10) == 2
    assert [e[0] for e in box.pending(10, set())] == [late, last]
    box.close()


def test_an_outbox_from_before_the_replay_window_keeps_its_pending_events(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
        "payload BLOB NOT NULL)"
    )
    old.execute("INSERT INTO outbox (topic, payload) VALUES ('t', x'01')")
    old.commit()
    old.close()
    box = Outbox(path)
    assert box.pending(10, set()) == [(1, "t", b"\x01")]
    box.close()
