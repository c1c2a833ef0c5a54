"""Fill a data dir with a simulated year of line history (about 1,000,000 card-log rows, demo line).

    python bench/generate_history.py --data-dir /tmp/kt-year [--days 365] [--config config/demo.toml]

Same as `kanban-terminal generate-history`; kept here so the benchmark has its data with one command.
"""

from __future__ import annotations

import sys

from kanban_terminal.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate-history", *sys.argv[1:]]))
