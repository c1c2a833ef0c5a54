"""Checking the card log's hash chain over the whole file, the way `verify-log` does.

Reports the first row whose hash does not follow from the rows before it (the streaming check is
storage/log_reads.py `verify_chain_of`). Read-only.
"""

from __future__ import annotations

from kanban_terminal.storage.card_log import ChainReport
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.log_reads import verify_chain_of


def verify_log(db: Database) -> ChainReport:
    """Recompute the chain in id order; `first_broken_id` names the first row that does not match."""
    return verify_chain_of(db)
