"""Fill a data dir with a simulated year of line history (about 1,000,000 card-log rows, demo line).

    python bench/generate_history.py --data-dir /tmp/kt-year [--days 365] [--config config/demo.toml]

Same as `python -m bench.history`; kept as a script so the benchmark has its data with one command.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.history.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
