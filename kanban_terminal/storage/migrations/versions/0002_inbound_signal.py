"""Inbound bin-signal dedupe table, and outbox indexes for the relay's queries.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_signal",
        sa.Column("device", sa.String(), nullable=False),
        sa.Column("boot", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.String(length=27), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("device", "boot", "seq"),
    )
    with op.batch_alter_table("inbound_signal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_signal_received_at"), ["received_at"], unique=False)
    with op.batch_alter_table("replenishment_request", schema=None) as batch_op:
        batch_op.create_index("ix_request_publish_state", ["publish_state"], unique=False)
        batch_op.create_index(
            "ix_request_publish_state_last", ["publish_state", "last_published_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("replenishment_request", schema=None) as batch_op:
        batch_op.drop_index("ix_request_publish_state_last")
        batch_op.drop_index("ix_request_publish_state")
    with op.batch_alter_table("inbound_signal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_signal_received_at"))
    op.drop_table("inbound_signal")
