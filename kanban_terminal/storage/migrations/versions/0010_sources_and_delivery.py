"""Supplier trouble, second sources and delivery in full (issues 17 and 18).

Columns on `replenishment_request`: upstream's warning about an open request (`trouble` = delayed or
at_risk, its reason and the first time it was seen: a later warning never moves `trouble_at`, which
starts the disruption-response clock), when the line was safe again (`safe_at`: delivered, re-routed
or reserve drawn), what a delivery scan recorded short or damaged, and the request a shortfall
request makes up for. Two tables: `request_cancel`, the outbox of cancels a re-route sends upstream
(re-sent until upstream answers `cancelled`, like requests), and `loop_route`, the source a team
lead re-routed a loop to (absent: the configured source).

Revision ID: 0010
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

_REQUEST_COLUMNS = (
    ("trouble", sa.String),
    ("trouble_reason", sa.String),
    ("trouble_at", lambda: sa.String(length=27)),
    ("safe_at", lambda: sa.String(length=27)),
    ("short_qty", sa.Integer),
    ("damaged_qty", sa.Integer),
    ("shortfall_of", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("replenishment_request", schema=None) as batch_op:
        for name, kind in _REQUEST_COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))
    op.create_table(
        "request_cancel",
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("loop_id", sa.String(), nullable=False),
        sa.Column("card_id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("replaced_by", sa.String(), nullable=True),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("cancelled_at", sa.String(length=27), nullable=False),
        sa.Column("publish_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_published_at", sa.String(length=27), nullable=True),
        sa.Column("answered_at", sa.String(length=27), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_request_cancel_answered", "request_cancel", ["answered_at"], unique=False)
    op.create_table(
        "loop_route",
        sa.Column("loop_id", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("routed_at", sa.String(length=27), nullable=False),
        sa.Column("routed_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("loop_id"),
    )


def downgrade() -> None:
    op.drop_table("loop_route")
    op.drop_index("ix_request_cancel_answered", table_name="request_cancel")
    op.drop_table("request_cancel")
    with op.batch_alter_table("replenishment_request", schema=None) as batch_op:
        for name, _ in reversed(_REQUEST_COLUMNS):
            batch_op.drop_column(name)
