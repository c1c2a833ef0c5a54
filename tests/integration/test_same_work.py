"""The same-work bench pipeline stores what `serve` stores (bench/same_work.py, issue 19).

Its figures mean something only if its replayed groups write the rows `serve`'s groups write:
the same tables grow by the same rows, the cards and requests end in the same states, the loop's
sequence moves the same way, and its card-log rows chain and verify as `serve`'s do (HMAC with
the terminal's key), so the bench pays for what the product pays for."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pipeline_proc, same_work, same_work_capture
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_lines import line_config

pytestmark = pytest.mark.broker


def _facts(db: Path) -> dict[str, object]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        return {
            "counts": counts,
            "log events": con.execute(
                "SELECT event, count(*) FROM card_log GROUP BY 1 ORDER BY 1"
            ).fetchall(),
            "cards": con.execute("SELECT state, count(*) FROM card GROUP BY 1 ORDER BY 1").fetchall(),
            "requests": con.execute(
                "SELECT card_id, loop_seq, status, publish_state FROM replenishment_request ORDER BY loop_seq"
            ).fetchall(),
            "signals": con.execute(
                "SELECT device, boot, seq, outcome FROM inbound_signal ORDER BY 1"
            ).fetchall(),
            "next seq": con.execute("SELECT id, next_seq FROM loop ORDER BY 1").fetchall(),
        }
    finally:
        con.close()


def _groups_of_serve(facts: dict[str, object]) -> dict[str, object]:
    """What `serve`'s signal groups wrote, without what its jobs wrote beside them: the runway job's
    warning (a loop of 100 cards with 12 empty bins runs low: a `runway_warning` row and its
    `runway_low` log row, once a loop) and the relay's 1 s sweep, which may mark the last request's
    PUBACK before the capture stops `serve` (the replay marks a request in the next signal's group
    only, as `serve` does at a paced rate)."""
    requests = list(facts["requests"])  # type: ignore[call-overload]
    card, seq, _, _ = requests[-1]
    requests[-1] = (card, seq, "queued", "pending")
    counts = dict(facts["counts"])  # type: ignore[call-overload]
    events = dict(facts["log events"])  # type: ignore[call-overload]
    counts["card_log"] -= events.pop("runway_low", 0)
    counts["runway_warning"] = 0
    if events.get("request_sent") == len(requests):
        events["request_sent"] -= 1
        counts["card_log"] -= 1
    cards = dict(facts["cards"])  # type: ignore[call-overload]
    if cards.get("sent") == len(requests):
        cards["sent"] -= 1
        cards["queued"] = cards.get("queued", 0) + 1
    return facts | {
        "requests": requests,
        "counts": counts,
        "log events": sorted(events.items()),
        "cards": sorted(cards.items()),
    }


def test_replayed_groups_store_what_serves_groups_stored(mosquitto: Mosquitto, tmp_path: Path) -> None:
    captured = same_work_capture.capture(mosquitto.port, tmp_path / "serve")
    templates = same_work.Templates.build(captured)
    # The steady group carries the previous request's PUBACK mark, as serve's do at paced rates.
    assert any(spec == ["s", "prev_req"] for _, _, specs in templates.steady for spec in specs or [])
    assert not any(
        spec[0] == "s" and spec[1].startswith("prev") for _, _, s in templates.first for spec in s or []
    )

    home = tmp_path / "replay"
    cfg = home / "line.toml"
    home.mkdir()
    cfg.write_text(line_config(loops=1, cards=100, sensors=100, line="SWREP"))
    subprocess.run([sys.executable, "-c", pipeline_proc._CREATE, str(cfg), str(home / "data")], check=True)
    replayer, bins = same_work.replayer_for(cfg, home / "data", templates)
    try:
        for device in captured["devices"]:
            replayer.signal(device, bins[device], "2026-12-05T10:00:00.123Z")
    finally:
        replayer.con.close()

    served = _groups_of_serve(_facts(tmp_path / "serve" / "data" / "terminal.db"))
    replayed = _facts(home / "data" / "terminal.db")
    assert replayed["counts"] == served["counts"]
    for fact in ("log events", "cards", "requests", "signals", "next seq"):
        assert replayed[fact] == served[fact], fact

    verified = subprocess.run(
        [
            sys.executable,
            "-m",
            "kanban_terminal",
            "verify-log",
            "--config",
            str(cfg),
            "--data-dir",
            str(home / "data"),
        ],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "hash chain intact, keyed" in verified.stdout
