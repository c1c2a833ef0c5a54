"""Checking the card log the way `verify-log` does: the chain over the whole file, then its anchors.

The chain (storage/card_log.py `ChainCheck`, streamed by storage/log_reads.py) names the first row
whose hash does not follow from the rows before it; with the terminal's log key a row rewritten
without the key fails there too. What the chain cannot see, anchors can (storage/anchors.py): a
log whose newest rows were cut, or one rewritten by someone holding the key, no longer holds the
anchored row with the anchored hash. Read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kanban_terminal.storage.anchors import Anchor, stored_hashes
from kanban_terminal.storage.card_log import ChainReport
from kanban_terminal.storage.db import Database
from kanban_terminal.storage.log_reads import verify_chain_of


@dataclass(frozen=True)
class IntegrityReport:
    """The chain's verdict and the anchors'; `first_broken_id` is the earliest row either names."""

    chain: ChainReport
    anchors: int = 0
    """How many anchors were compared with the log."""
    proven_row: int | None = None
    """The newest anchored row the log still holds with the anchored hash: every row up to it is
    as it was when that anchor left the terminal."""
    proven_at: str = ""
    anchor_broken_id: int | None = None
    anchor_reason: str = ""

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.anchor_broken_id is None

    @property
    def first_broken_id(self) -> int | None:
        """The chain's row when the chain broke (exact: every row before it verified), else the
        anchors' (exact for a cut; for a rewrite, the first row no anchor still vouches for)."""
        if self.chain.first_broken_id is not None:
            return self.chain.first_broken_id
        return self.anchor_broken_id

    @property
    def reason(self) -> str:
        return self.chain.reason if self.chain.first_broken_id is not None else self.anchor_reason


def verify_log(db: Database) -> ChainReport:
    """Recompute the chain in id order; `first_broken_id` names the first row that does not match."""
    return verify_chain_of(db)


def compare_anchors(db: Database, anchors: Sequence[Anchor]) -> tuple[int | None, str, int | None, str]:
    """Check each anchor (oldest row first) against the log; stop at the first that fails.

    Returns:
        (first bad row or None, why, newest anchored row that still matches, when it was anchored).
    """
    ordered = sorted(anchors, key=lambda a: a.row)
    with db.snapshot() as sql:
        stored, last = stored_hashes(sql, [a.row for a in ordered if a.row > 0])
    proven: int | None = None
    proven_at = ""
    for a in ordered:
        if a.row == 0:
            continue
        found = stored.get(a.row)
        if found == a.hash:
            proven, proven_at = a.row, a.at
            continue
        since = (
            f"after row {proven}, the last anchor that still matches" if proven else "from the first row on"
        )
        if found is None and a.row > last:
            newest = max(ordered, key=lambda x: x.row)
            first = last + 1
            span = f"row {first} was" if newest.row == first else f"rows {first} to {newest.row} were"
            why = (
                f"the log ends at row {last}, but row {newest.row} left the terminal as an anchor at "
                f"{newest.at}: {span} cut (at least)"
            )
            return last + 1, why, proven, proven_at
        if found is None:
            return a.row, f"row {a.row}, anchored at {a.at}, is missing: rows were deleted", proven, proven_at
        bad = (proven or 0) + 1
        why = (
            f"row {a.row} no longer carries the hash anchored at {a.at}: the log was rewritten at or before "
            f"row {a.row}, {since}; row {bad} is the first one that cannot be trusted"
        )
        return bad, why, proven, proven_at
    return None, "", proven, proven_at


def verify_with_anchors(db: Database, anchors: Sequence[Anchor]) -> IntegrityReport:
    """The chain, then every anchor of this terminal (see `compare_anchors`)."""
    chain = verify_chain_of(db)
    bad, why, proven, proven_at = compare_anchors(db, anchors)
    return IntegrityReport(chain, len(anchors), proven, proven_at, bad, why)
