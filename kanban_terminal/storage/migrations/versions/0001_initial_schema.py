"""Initial schema: parts, loops, cards, the append-only card log, requests (the outbox), rejected input.

The card log is append-only in the database itself: triggers abort any UPDATE or DELETE on it, so
no code path (and no hand-typed SQL in the sqlite3 shell) can edit history after the fact.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.String(length=27), nullable=False),
        sa.Column("recorded_at", sa.String(length=27), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("card_id", sa.String(), nullable=True),
        sa.Column("loop_id", sa.String(), nullable=True),
        sa.Column("from_state", sa.String(), nullable=True),
        sa.Column("to_state", sa.String(), nullable=True),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("andon_id", sa.String(), nullable=True),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("card_log", schema=None) as batch_op:
        batch_op.create_index("ix_card_log_card_occurred", ["card_id", "occurred_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_log_andon_id"), ["andon_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_log_event"), ["event"], unique=False)
        batch_op.create_index(batch_op.f("ix_card_log_occurred_at"), ["occurred_at"], unique=False)

    op.create_table(
        "part",
        sa.Column("number", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("unit", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "rejected_input",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(length=27), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("input", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejected_input", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejected_input_at"), ["at"], unique=False)

    op.create_table(
        "loop",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("part_number", sa.String(), nullable=False),
        sa.Column("station", sa.String(), nullable=False),
        sa.Column("point_of_use", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("container_quantity", sa.Integer(), nullable=False),
        sa.Column("card_count", sa.Integer(), nullable=False),
        sa.Column("lead_time_s", sa.Float(), nullable=False),
        sa.Column("safety_factor", sa.Float(), nullable=False),
        sa.Column("next_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["part_number"],
            ["part.number"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "card",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("loop_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("state_since", sa.String(length=27), nullable=False),
        sa.Column("last_scan_at", sa.String(length=27), nullable=True),
        sa.Column("last_seen_at", sa.String(length=27), nullable=True),
        sa.Column("open_request_id", sa.String(), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["loop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_loop_id"), ["loop_id"], unique=False)

    op.create_table(
        "replenishment_request",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("card_id", sa.String(), nullable=False),
        sa.Column("loop_id", sa.String(), nullable=False),
        sa.Column("loop_seq", sa.Integer(), nullable=False),
        sa.Column("part_number", sa.String(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("station", sa.String(), nullable=False),
        sa.Column("point_of_use", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("raised_at", sa.String(length=27), nullable=False),
        sa.Column("due_at", sa.String(length=27), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("publish_state", sa.String(), nullable=False),
        sa.Column("publish_count", sa.Integer(), nullable=False),
        sa.Column("last_published_at", sa.String(length=27), nullable=True),
        sa.Column("upstream_status", sa.String(), nullable=True),
        sa.Column("upstream_at", sa.String(length=27), nullable=True),
        sa.Column("eta", sa.String(length=27), nullable=True),
        sa.Column("closed_at", sa.String(length=27), nullable=True),
        sa.Column("lead_time_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["card.id"],
        ),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["loop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("replenishment_request", schema=None) as batch_op:
        batch_op.create_index("ix_request_outbox", ["publish_state", "loop_id", "loop_seq"], unique=False)
        batch_op.create_index(
            "ux_request_open_card", ["card_id"], unique=True, sqlite_where=sa.text("closed_at IS NULL")
        )

    op.execute(
        "CREATE TRIGGER card_log_no_update BEFORE UPDATE ON card_log "
        "BEGIN SELECT RAISE(ABORT, 'card_log is append-only'); END"
    )
    op.execute(
        "CREATE TRIGGER card_log_no_delete BEFORE DELETE ON card_log "
        "BEGIN SELECT RAISE(ABORT, 'card_log is append-only'); END"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS card_log_no_delete")
    op.execute("DROP TRIGGER IF EXISTS card_log_no_update")
    with op.batch_alter_table("replenishment_request", schema=None) as batch_op:
        batch_op.drop_index("ux_request_open_card", sqlite_where=sa.text("closed_at IS NULL"))
        batch_op.drop_index("ix_request_outbox")

    op.drop_table("replenishment_request")
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_loop_id"))

    op.drop_table("card")
    op.drop_table("loop")
    with op.batch_alter_table("rejected_input", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejected_input_at"))

    op.drop_table("rejected_input")
    op.drop_table("part")
    with op.batch_alter_table("card_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_card_log_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_card_log_event"))
        batch_op.drop_index("ix_card_log_card_occurred")
        batch_op.drop_index(batch_op.f("ix_card_log_andon_id"))

    op.drop_table("card_log")
