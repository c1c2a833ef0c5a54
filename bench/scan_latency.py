"""Scan-to-durable latency through the service, next to raw sqlite3 baselines from the same run.

    python bench/scan_latency.py [--scans 3000] [--tui-scans 200] [--stage-scans 200]

Prints p50/p99 for:
  raw-1row   one INSERT + COMMIT, WAL + synchronous=FULL (the issue's baseline)
  raw-same   the same statements a scan writes (read card, 2 log rows, request, loop seq, card), raw sqlite3
  service    record_scan on a real file (what the CLI and the TUI call)
  tui        Enter in the running Textual app -> banner shows the outcome (Pilot, headless)
  stages     a scanner's keys posted to the running app (headless, every frame rendered to the text
             a terminal would get) -> the banner's frame, hop by hop (bench/scan_stages.py):
             p50 / p90 / p99 / max of each hop, and the slowest scans
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench.scan_stages` as a script


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def _open_raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def raw_one_row(n: int, folder: Path) -> list[float]:
    conn = _open_raw(folder / "raw1.db")
    conn.execute("CREATE TABLE event (id INTEGER PRIMARY KEY, card TEXT, kind TEXT, at TEXT)")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO event (card, kind, at) VALUES (?, ?, ?)", (f"C{i}", "scan", "2026"))
        conn.execute("COMMIT")
        out.append(time.perf_counter() - t0)
    conn.close()
    return out


def raw_same_statements(n: int, folder: Path) -> list[float]:
    conn = _open_raw(folder / "raw5.db")
    conn.executescript(
        "CREATE TABLE card (id TEXT PRIMARY KEY, state TEXT, since TEXT, open_request TEXT);"
        "CREATE TABLE loop (id TEXT PRIMARY KEY, next_seq INTEGER);"
        "CREATE TABLE log (id INTEGER PRIMARY KEY, at TEXT, event TEXT, card TEXT, hash TEXT);"
        "CREATE INDEX ix_log_card ON log (card, at); CREATE INDEX ix_log_at ON log (at);"
        "CREATE TABLE req (id TEXT PRIMARY KEY, card TEXT, seq INTEGER, raised TEXT, closed TEXT);"
        "CREATE UNIQUE INDEX ux_req ON req (card) WHERE closed IS NULL;"
        "INSERT INTO loop VALUES ('L', 1);"
    )
    conn.executemany("INSERT INTO card VALUES (?, 'in_use', '', NULL)", [(f"C{i}",) for i in range(40)])
    out = []
    for i in range(n):
        card = f"C{i % 40}"
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT state, open_request FROM card WHERE id = ?", (card,)).fetchone()
        conn.execute("SELECT hash FROM log ORDER BY id DESC LIMIT 1").fetchone()
        (seq,) = conn.execute(
            "UPDATE loop SET next_seq = next_seq + 1 WHERE id='L' RETURNING next_seq"
        ).fetchone()
        rid = str(uuid.uuid4())
        conn.execute("UPDATE req SET closed = 'x' WHERE card = ? AND closed IS NULL", (card,))
        conn.execute("INSERT INTO req VALUES (?, ?, ?, '2026', NULL)", (rid, card, seq))
        conn.execute("INSERT INTO log (at, event, card, hash) VALUES ('2026', 'bin_empty', ?, 'h')", (card,))
        conn.execute("INSERT INTO log (at, event, card, hash) VALUES ('2026', 'raised', ?, 'h')", (card,))
        conn.execute("UPDATE card SET state = 'queued', open_request = ? WHERE id = ?", (rid, card))
        conn.execute("COMMIT")
        out.append(time.perf_counter() - t0)
    conn.close()
    return out


def service(n: int, folder: Path) -> list[float]:
    from kanban_terminal.config import demo_config_path, load_config
    from kanban_terminal.services.scanning import record_scan
    from kanban_terminal.services.terminal import Terminal

    cfg = load_config(demo_config_path())
    now = [datetime.now(UTC)]
    terminal = Terminal.open(cfg, folder / "service", clock=lambda: now[0])
    cards = list(terminal.card_loops)
    out = []
    for i in range(n):
        now[0] += timedelta(hours=1)  # past debounce and plausibility: every scan writes
        t0 = time.perf_counter()
        outcome = record_scan(terminal, cards[i % len(cards)], source="bench")
        out.append(time.perf_counter() - t0)
        assert outcome.accepted, outcome.message
    terminal.close()
    return out


async def tui(n: int, folder: Path) -> list[float]:
    from kanban_terminal.config import demo_config_path, load_config
    from kanban_terminal.services.terminal import Terminal
    from kanban_terminal.tui.app import KanbanApp
    from kanban_terminal.tui.widgets.banner import Banner

    cfg = load_config(demo_config_path())
    # A line's own pace: 4 s between scans (past the 3 s debounce), no request going overdue during
    # the run (jumping the clock by hours would make the andon timer raise waves of material andons
    # mid-measurement), and deliveries accepted at once (plausibility guard off) so each scan
    # writes and ends green.
    loops = tuple(lp.model_copy(update={"min_plausible_lead_time_minutes": 0}) for lp in cfg.loops)
    cfg = cfg.model_copy(update={"loops": loops})
    now = [datetime.now(UTC)]
    terminal = Terminal.open(cfg, folder / "tui", clock=lambda: now[0])
    cards = list(terminal.card_loops)
    app = KanbanApp(terminal)
    out = []
    async with app.run_test(size=(80, 24)):
        field = app.screen.query_one("#scan-field")
        banner = app.screen.query_one(Banner)
        for i in range(n):
            now[0] += timedelta(seconds=4)
            field.value = cards[i % len(cards)]  # type: ignore[attr-defined]
            before = app.last_outcome
            t0 = time.perf_counter()
            # What the Enter key binding invokes; Pilot.press would add its own ~70 ms idle wait.
            await field.action_submit()  # type: ignore[attr-defined]
            # Poll the event loop until the banner shows the new outcome (what the operator sees).
            # An asyncio.Event would add its own wake-up latency to the figure.
            while app.last_outcome is before or not banner.has_class("-accepted"):  # noqa: ASYNC110
                await asyncio.sleep(0)
            out.append(time.perf_counter() - t0)
    terminal.close()
    return out


async def stages(n: int, folder: Path) -> None:
    importlib.import_module("kanban_terminal.tui")  # first: it sets the frame cap Textual reads on import
    from textual import events

    from bench.scan_stages import Tracer, install, report
    from kanban_terminal.tui.app import KanbanApp

    tracer = Tracer()
    install(tracer, render_headless=True)
    terminal, cards, now = _line(folder / "stages")
    app = KanbanApp(terminal)
    async with app.run_test(size=(80, 24)):
        app.on_ready()  # run_test gives no Ready: freeze what start-up built, as on a terminal
        for i in range(n):
            now[0] += timedelta(seconds=4)
            card = cards[i % len(cards)]
            done = len(tracer.done)
            # A wedge scanner's read: its keys arrive together (a pty delivers them in one read).
            for ch in card:
                app.post_message(events.Key(ch, ch))  # stamped now, as the input thread would
            app.post_message(events.Key("enter", "\r"))
            while len(tracer.done) == done:  # noqa: ASYNC110 (an Event would add its own wake-up)
                await asyncio.sleep(0)
            # The next read comes after the screen has settled, as at a line's pace.
            await asyncio.sleep(0.05)
    terminal.close()
    report(tracer.done, "stages, headless (frames rendered to text)", spans=True)


def _line(folder: Path) -> tuple[Any, list[str], list[datetime]]:
    from kanban_terminal.config import demo_config_path, load_config
    from kanban_terminal.services.terminal import Terminal

    cfg = load_config(demo_config_path())
    loops = tuple(lp.model_copy(update={"min_plausible_lead_time_minutes": 0}) for lp in cfg.loops)
    cfg = cfg.model_copy(update={"loops": loops})
    now = [datetime.now(UTC)]
    terminal = Terminal.open(cfg, folder, clock=lambda: now[0])
    return terminal, list(terminal.card_loops), now


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scans", type=int, default=3000)
    parser.add_argument("--tui-scans", type=int, default=200)
    parser.add_argument("--stage-scans", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kanban-bench-", dir=Path.cwd()) as tmp:
        folder = Path(tmp)
        results = {
            "raw-1row": raw_one_row(args.scans, folder),
            "raw-same": raw_same_statements(args.scans, folder),
            "service": service(args.scans, folder),
        }
        tui_lat = asyncio.run(tui(args.tui_scans, folder)) if args.tui_scans else []
        if args.stage_scans:
            asyncio.run(stages(args.stage_scans, folder))
    print(f"{'path':<10}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, values in results.items():
        mean = statistics.mean(values) * 1000
        print(f"{name:<10}{len(values):>6}{pct(values, 0.5):>9.3f}{pct(values, 0.99):>9.3f}{mean:>9.3f}")
    base = pct(results["raw-1row"], 0.99)
    same = pct(results["raw-same"], 0.99)
    svc = pct(results["service"], 0.99)
    print(f"service p99 / raw-1row p99 = {svc / base:.2f}x   service p99 / raw-same p99 = {svc / same:.2f}x")
    if tui_lat:
        p50, p99 = pct(tui_lat, 0.5), pct(tui_lat, 0.99)
        print(f"tui Enter->banner  n={len(tui_lat)}  p50 {p50:.2f} ms  p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
