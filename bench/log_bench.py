"""Card-log benchmark on a year of history (~1.2M rows): filtered page queries against a raw sqlite3
baseline of the same SQL, TUI start to first screen, log and metrics screens, export, verify-log,
and peak memory.

    python bench/log_bench.py --data-dir /tmp/kt-year      # generates the year first if missing

Targets (issue 6): filtered log query p99 <= 50 ms, TUI start to first screen <= 1.5 s, peak memory
<= 150 MB. Each TUI run is a fresh process (imports, migrations check and catalog sync included),
timed from just before spawning it to Textual's Ready (first screen painted), headless.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kanban_terminal.config import load_config  # noqa: E402
from kanban_terminal.services.log_integrity import verify_log  # noqa: E402
from kanban_terminal.services.log_query import LogFilter, read_page, write_csv  # noqa: E402
from kanban_terminal.services.terminal import DB_FILENAME, Terminal  # noqa: E402
from kanban_terminal.storage.log_reads import _statement  # noqa: E402

CONFIG = ROOT / "bench" / "bench_line.toml"
PAGES = 5  # first page + 4 older pages by keyset, per filter and round


def filters(terminal: Terminal) -> dict[str, LogFilter]:
    with terminal.db.reading() as session:
        last = session.connection().exec_driver_sql("SELECT max(occurred_at) FROM card_log").scalar_one()
    from datetime import datetime

    end = datetime.fromisoformat(last)
    card = terminal.config.loop("ST20-PLATE").card_id_list()[0]
    return {
        "none": LogFilter(),
        "card": LogFilter(card=card),
        "loop": LogFilter(loop="ST30-TUBE-2"),
        "part": LogFilter(part="300-4410"),
        "station": LogFilter(station="ST30"),
        "event": LogFilter(events=("delivered",)),
        "andon": LogFilter(events=("andon",)),
        "source family": LogFilter(source="mqtt:"),
        "actor": LogFilter(actor="E2001"),
        "one day, 100 days back": LogFilter(since=end - timedelta(days=101), until=end - timedelta(days=100)),
        "card + month": LogFilter(card=card, since=end - timedelta(days=60), until=end - timedelta(days=30)),
        "free text (common)": LogFilter(text="lead time 18"),
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def bench_queries(terminal: Terminal, rounds: int) -> dict[str, object]:
    flts = filters(terminal)
    ours: list[float] = []
    raw: list[float] = []
    per_filter: dict[str, float] = {}
    conn = sqlite3.connect(terminal.db.path)
    for name, flt in flts.items():
        mine: list[float] = []
        for _ in range(rounds):
            before = None
            for _ in range(PAGES):
                t0 = time.perf_counter()
                page = read_page(terminal.db, flt, before=before, limit=100)
                mine.append((time.perf_counter() - t0) * 1000)
                # The same SQL through the bare sqlite3 module: what the page costs without us.
                stmt, params = _statement(flt, "id < :cursor" if before else "", "DESC", 101)
                bound = {**params, "cursor": before} if before else params
                sql = str(stmt.bindparams(**bound).compile(compile_kwargs={"literal_binds": True}))
                t0 = time.perf_counter()
                conn.execute(sql).fetchall()
                raw.append((time.perf_counter() - t0) * 1000)
                if not page.has_older:
                    break
                before = page.oldest_id
        ours += mine
        per_filter[name] = pct(mine, 99)
    conn.close()
    sparse = LogFilter(text="raised in error")  # a rare phrase: LIKE must scan most of the log
    sparse_ms = []
    for _ in range(3):
        t0 = time.perf_counter()
        read_page(terminal.db, sparse, limit=100)
        sparse_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "queries": len(ours),
        "p50_ms": statistics.median(ours),
        "p99_ms": pct(ours, 99),
        "max_ms": max(ours),
        "raw_p50_ms": statistics.median(raw),
        "raw_p99_ms": pct(raw, 99),
        "per_filter_p99_ms": per_filter,
        "sparse_free_text_ms": statistics.median(sparse_ms),
    }


CHILD = ROOT / "bench" / "tui_start.py"


def bench_tui(data_dir: Path, runs: int) -> dict[str, object]:
    first, log_page, metrics, rss = [], [], [], []
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, str(CHILD), str(CONFIG), str(data_dir)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        marks = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own child's repr
        first.append(marks["first_screen"] - t0)
        log_page.append(marks["log_page"] - marks["first_screen"])
        metrics.append(marks["metrics"] - marks["log_page"])
        rss.append(marks["maxrss_kb"] / 1024)
    return {
        "runs": runs,
        "start_to_first_screen_s": {"median": statistics.median(first), "max": max(first)},
        "log_screen_first_page_s": {"median": statistics.median(log_page), "max": max(log_page)},
        "metrics_screen_s": {"median": statistics.median(metrics), "max": max(metrics)},
        "peak_rss_mb": max(rss),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/kt-year"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tui-runs", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(CONFIG)
    if not (args.data_dir / DB_FILENAME).exists():
        from bench.history.cli import main as generate_history

        generate_history(["--config", str(CONFIG), "--data-dir", str(args.data_dir)])
    terminal = Terminal.open(cfg, args.data_dir)
    try:
        with terminal.db.reading() as session:
            rows = session.connection().exec_driver_sql("SELECT count(*) FROM card_log").scalar_one()
        size_mb = (args.data_dir / DB_FILENAME).stat().st_size / 1e6
        result: dict[str, object] = {"log_rows": rows, "db_mb": round(size_mb)}
        result["query"] = bench_queries(terminal, args.rounds)
        t0 = time.perf_counter()
        report = verify_log(terminal.db)
        result["verify_log_s"] = time.perf_counter() - t0
        assert report.ok, report
        t0 = time.perf_counter()
        sink = io.StringIO()
        exported = write_csv(terminal.db, LogFilter(loop="ST20-PLATE"), sink)
        result["export_one_loop"] = {"rows": exported, "s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        with open("/dev/null", "w", encoding="utf-8") as devnull:
            exported = write_csv(terminal.db, LogFilter(), devnull)
        result["export_all"] = {"rows": exported, "s": time.perf_counter() - t0}
        result["bench_process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        terminal.close()
    result["tui"] = bench_tui(args.data_dir, args.tui_runs)
    print(json.dumps(result, indent=2, default=lambda v: round(v, 2) if isinstance(v, float) else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
