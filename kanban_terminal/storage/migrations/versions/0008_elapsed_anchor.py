"""Elapsed anchors: timers count elapsed time, not wall time, across restarts (issue 17, clocks).

An andon's escalation tiers are due after elapsed time since the raise. While `serve` runs the
monotonic clock measures it; this table keeps, per timer, the elapsed time at a monotonic reading of
a given boot, so a restarted process on the same boot goes on from the same origin and a wall-clock
step while it was down changes nothing (domain/clocks.py).

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "elapsed_anchor",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("boot_id", sa.String(), nullable=False),
        sa.Column("mono_s", sa.Float(), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("saved_at", sa.String(length=27), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("elapsed_anchor")
