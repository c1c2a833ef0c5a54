"""`python -m bench.history --data-dir DIR [--days N] [--seed S] [--config FILE]`."""

import sys

from bench.history.cli import main

sys.exit(main())
