"""Runway warnings (issue 18): one row per episode of a loop running short, so its material warning is
raised exactly once per episode, across timers, processes and restarts (the partial unique index on
open episodes), and the log can say when it cleared.

Written by hand (no app imports) so the migration keeps describing this revision.

Revision ID: 0009
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runway_warning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loop_id", sa.String(), nullable=False),
        sa.Column("raised_at", sa.String(length=27), nullable=False),
        sa.Column("runway_s", sa.Float(), nullable=False),
        sa.Column("margin_s", sa.Float(), nullable=False),
        sa.Column("andon_id", sa.String(), nullable=True),
        sa.Column("cleared_at", sa.String(length=27), nullable=True),
        sa.Column("cleared_runway_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("runway_warning", schema=None) as batch_op:
        batch_op.create_index("ix_runway_warning_loop_id", ["loop_id"], unique=False)
        batch_op.create_index(
            "ux_runway_warning_open", ["loop_id"], unique=True, sqlite_where=sa.text("cleared_at IS NULL")
        )


def downgrade() -> None:
    op.drop_table("runway_warning")
