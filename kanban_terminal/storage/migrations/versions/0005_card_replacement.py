"""The card-replacement record: a lost card replaced by a newly printed one (issue 6).

The old id is retired for good (the catalog sync, which otherwise brings back every configured card,
reads this table and must not revive it) and the new id joins the loop. A table rather than log
parsing: the sync needs it at every start, and it must survive a config reload.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_replacement",
        sa.Column("old_id", sa.String(), nullable=False),
        sa.Column("new_id", sa.String(), nullable=False),
        sa.Column("loop_id", sa.String(), nullable=False),
        sa.Column("replaced_at", sa.String(length=27), nullable=False),
        sa.PrimaryKeyConstraint("old_id"),
        sa.UniqueConstraint("new_id"),
    )


def downgrade() -> None:
    op.drop_table("card_replacement")
