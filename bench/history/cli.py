"""`python -m bench.history`: fill a NEW data dir with simulated history (it was the product's
`kanban-terminal generate-history` verb until issue 14 moved the simulator out of the product).

The data dir is opened with `Terminal.open` first, so the schema and the catalog are the product's
own; then the simulated rows are appended. It refuses a data dir that already holds a database:
a live terminal's log must never receive invented rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.history.writer import generate
from kanban_terminal.config import demo_config_path, load_config
from kanban_terminal.progress import cli_progress
from kanban_terminal.services.terminal import DB_FILENAME, Terminal

EXIT_OK, EXIT_USAGE = 0, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, generate, print one summary line; 2 when the data dir already has a database."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.history", description="fill a NEW data dir with simulated history (test data)"
    )
    parser.add_argument("--config", type=Path, default=None, help="terminal configuration (default: demo)")
    parser.add_argument("--data-dir", type=Path, required=True, help="a new (or empty) data dir")
    parser.add_argument("--days", type=int, default=365, help="days of history (default 365)")
    parser.add_argument("--seed", type=int, default=6, help="random seed (same seed, same history)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config or demo_config_path())
    root: Path = args.data_dir
    if (root / DB_FILENAME).exists():
        print(f"{root / DB_FILENAME} exists: this tool only fills a new data dir", file=sys.stderr)
        return EXIT_USAGE
    end = datetime.now(UTC)
    start = end - timedelta(days=args.days)
    Terminal.open(cfg, root, clock=lambda: start).close()
    t0 = time.perf_counter()
    with cli_progress("history") as bar:
        result = generate(cfg, root / DB_FILENAME, days=args.days, end=end, seed=args.seed, progress=bar)
    print(
        f"{result.log_rows} log rows, {result.requests} requests, {result.andons} andons "
        f"({result.stockouts} stockouts) from {result.start:%Y-%m-%d} to {result.end:%Y-%m-%d} "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return EXIT_OK
