"""A realistic year of line history in a data dir: for trying the log and metrics screens, for the
benchmark (about 1,000,000 card-log rows with the demo line), and for tests that replay a year.

A test-data tool, kept out of the product (issue 14): `kanban_terminal` never imports it. Run it as

    python -m bench.history --data-dir /tmp/kt-year [--days 365] [--seed 6] [--config config/demo.toml]

or from code with `generate(cfg, db_path, days=..., end=..., seed=...)`.
"""

from bench.history.simulation import SimEvent, SimRequest, simulate
from bench.history.writer import GenerateResult, generate

__all__ = ["GenerateResult", "SimEvent", "SimRequest", "generate", "simulate"]
