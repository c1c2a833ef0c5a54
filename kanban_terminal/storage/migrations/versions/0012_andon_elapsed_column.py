"""An andon's elapsed time since its raise, in a column of its acknowledge, resolve and cancel rows.

A CALL's time to acknowledge and to resolve (metrics' material response, a closed call's duration on
the andon screen, `metrics --json`) was the difference of two stored wall timestamps: an NTP step of
+1 h between raise and acknowledge reported a 1 h response, a step back 0. From this revision the use
case writes the seconds since the raise, counted from the andon's elapsed anchor (the one a stop's
`downtime_s` is counted from, services/andon_elapsed.py), into `elapsed_s`; NULL where no anchor
existed, and on every row written before: readers then use the wall difference, as before.

No backfill: nothing better than the wall difference exists for old rows. The hash of a row covers
`elapsed_s` only when it is set (storage/card_log.py), so every row written before keeps its hash.
Adding a column leaves the append-only triggers as they are (SQLite's ADD COLUMN rewrites no row).

Written by hand (no app imports) so the migration keeps describing this revision.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_NO_UPDATE = (
    "CREATE TRIGGER card_log_no_update BEFORE UPDATE ON card_log "
    "BEGIN SELECT RAISE(ABORT, 'card_log is append-only'); END"
)
_NO_DELETE = (
    "CREATE TRIGGER card_log_no_delete BEFORE DELETE ON card_log "
    "BEGIN SELECT RAISE(ABORT, 'card_log is append-only'); END"
)


def upgrade() -> None:
    op.add_column("card_log", sa.Column("elapsed_s", sa.Float(), nullable=True))


def downgrade() -> None:
    # Dropping a column rebuilds the table in batch mode, which drops its triggers: recreate them.
    op.execute("DROP TRIGGER IF EXISTS card_log_no_update")
    op.execute("DROP TRIGGER IF EXISTS card_log_no_delete")
    with op.batch_alter_table("card_log", schema=None) as batch_op:
        batch_op.drop_column("elapsed_s")
    op.execute(_NO_UPDATE)
    op.execute(_NO_DELETE)
