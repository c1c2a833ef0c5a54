"""Fewer pages a bin signal's commit writes (issue 19): drop or narrow the indexes no read needs.

A one-signal group wrote 27.8 WAL frames a commit (bench/group_cost.py, 1,000 groups): the request
with its 7 indexes, the card-log rows with their 8, the dedupe key with its 2, the card and the
loop, each at least a page. A paced signal is a group of one, so each of those b-trees is a page
fsynced a signal. What changes (every read of these tables checked with EXPLAIN QUERY PLAN,
tests/integration/test_signal_pages.py):

* kept, though it looks redundant: `ix_request_publish_state (publish_state)`, a prefix of two
  other indexes, is what walks the pending rows in rowid order without sorting the outbox
  (storage/outbox.py); `ix_card_log_occurred_at` and `ix_card_log_event` serve the log's date
  range and the runway, handover and andon-metric reads.
* `ix_card_log_card_occurred (card_id, occurred_at)`: no read orders a card's rows by time through
  it; the card filter of the log screen walks `ix_card_log_card_id (card_id, id)`: dropped.
* `ix_card_log_actor_id` and `ix_card_log_andon_id`: every read compares the column with a value
  (`actor = ?`, `andon_id IN (...)`), which implies NOT NULL, so partial indexes over the rows that
  have one serve them, and a signal's rows (no actor, no andon) no longer touch them.
* `ix_request_publish_state_last (publish_state, last_published_at)`: only the relay's query for
  published rows due again reads it (`publish_state = 'published' AND ...`), so it is made partial
  over published rows: a raised request (pending) no longer writes a page of it; the PUBACK mark,
  a later commit, adds it.
* `inbound_signal` WITHOUT ROWID: its key is the table, one b-tree instead of the table and its key
  index (rows copied as they are).

Written by hand (no app imports) so the migration keeps describing this revision.

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

_PUBLISHED = "publish_state = 'published'"
_NOT_NULL = {"actor": "actor IS NOT NULL", "andon_id": "andon_id IS NOT NULL"}


def _rebuild_inbound(*, with_rowid: bool) -> None:
    suffix = "" if with_rowid else " WITHOUT ROWID"
    op.execute("DROP INDEX IF EXISTS ix_inbound_signal_received_at")
    op.execute("ALTER TABLE inbound_signal RENAME TO inbound_signal_old")
    op.execute(
        "CREATE TABLE inbound_signal (device VARCHAR NOT NULL, boot VARCHAR NOT NULL, seq INTEGER NOT NULL, "
        "received_at VARCHAR(27) NOT NULL, outcome VARCHAR NOT NULL, PRIMARY KEY (device, boot, seq))"
        + suffix
    )
    op.execute(
        "INSERT INTO inbound_signal (device, boot, seq, received_at, outcome) "
        "SELECT device, boot, seq, received_at, outcome FROM inbound_signal_old"
    )
    op.execute("DROP TABLE inbound_signal_old")
    op.create_index("ix_inbound_signal_received_at", "inbound_signal", ["received_at"])


def upgrade() -> None:
    op.drop_index("ix_card_log_card_occurred", "card_log")
    op.drop_index("ix_card_log_actor_id", "card_log")
    op.create_index(
        "ix_card_log_actor_id", "card_log", ["actor", "id"], sqlite_where=sa.text(_NOT_NULL["actor"])
    )
    op.drop_index("ix_card_log_andon_id", "card_log")
    op.create_index(
        "ix_card_log_andon_id", "card_log", ["andon_id"], sqlite_where=sa.text(_NOT_NULL["andon_id"])
    )
    op.drop_index("ix_request_publish_state_last", "replenishment_request")
    op.create_index(
        "ix_request_publish_state_last",
        "replenishment_request",
        ["publish_state", "last_published_at"],
        sqlite_where=sa.text(_PUBLISHED),
    )
    _rebuild_inbound(with_rowid=False)


def downgrade() -> None:
    _rebuild_inbound(with_rowid=True)
    op.drop_index("ix_request_publish_state_last", "replenishment_request")
    op.create_index(
        "ix_request_publish_state_last", "replenishment_request", ["publish_state", "last_published_at"]
    )
    op.drop_index("ix_card_log_andon_id", "card_log")
    op.create_index("ix_card_log_andon_id", "card_log", ["andon_id"])
    op.drop_index("ix_card_log_actor_id", "card_log")
    op.create_index("ix_card_log_actor_id", "card_log", ["actor", "id"])
    op.create_index("ix_card_log_card_occurred", "card_log", ["card_id", "occurred_at"])
