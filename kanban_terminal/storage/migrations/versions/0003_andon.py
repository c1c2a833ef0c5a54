"""Andon: events, fired escalation tiers, shelved sources, handled device signals, team-lead credentials.

Written by hand (no app imports) so the migration keeps describing this revision whatever the tables
become later. `andon_escalation` has (andon_id, tier) as its key: a tier can be stored as fired only
once, which is what makes escalation exactly-once across restarts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=27), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "andon",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("station", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        _ts("raised_at"),
        sa.Column("raised_by", sa.String(), nullable=True),
        sa.Column("card_id", sa.String(), nullable=True),
        sa.Column("request_id", sa.String(), nullable=True),
        _ts("acknowledged_at", True),
        sa.Column("acknowledged_by", sa.String(), nullable=True),
        _ts("resolved_at", True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=False),
        _ts("cancelled_at", True),
        sa.Column("cancelled_by", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("andon", schema=None) as batch_op:
        batch_op.create_index("ix_andon_raised_at", ["raised_at"], unique=False)
        batch_op.create_index("ix_andon_state", ["state"], unique=False)
        batch_op.create_index(
            "ux_andon_request", ["request_id"], unique=True, sqlite_where=sa.text("request_id IS NOT NULL")
        )

    op.create_table(
        "andon_escalation",
        sa.Column("andon_id", sa.String(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        _ts("fired_at"),
        sa.ForeignKeyConstraint(["andon_id"], ["andon.id"]),
        sa.PrimaryKeyConstraint("andon_id", "tier"),
    )
    op.create_table(
        "andon_shelve",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("shelved_by", sa.String(), nullable=False),
        _ts("shelved_at"),
        _ts("until"),
        _ts("lifted_at", True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("andon_shelve", schema=None) as batch_op:
        batch_op.create_index("ix_andon_shelve_source", ["source"], unique=False)

    op.create_table(
        "andon_signal",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("device", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        _ts("received_at"),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("andon_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "credential",
        sa.Column("badge", sa.String(), nullable=False),
        sa.Column("pin_hash", sa.String(), nullable=False),
        _ts("enrolled_at"),
        sa.Column("failures", sa.Integer(), nullable=False),
        _ts("locked_until", True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("badge"),
    )


def downgrade() -> None:
    op.drop_table("credential")
    op.drop_table("andon_signal")
    with op.batch_alter_table("andon_shelve", schema=None) as batch_op:
        batch_op.drop_index("ix_andon_shelve_source")
    op.drop_table("andon_shelve")
    op.drop_table("andon_escalation")
    with op.batch_alter_table("andon", schema=None) as batch_op:
        batch_op.drop_index("ux_andon_request", sqlite_where=sa.text("request_id IS NOT NULL"))
        batch_op.drop_index("ix_andon_state")
        batch_op.drop_index("ix_andon_raised_at")
    op.drop_table("andon")
