"""Structured andon facts in the card log: kind, reason, station and downtime as columns (issue 14).

Until now metrics read `kind=...; reason=...` back out of the log's `detail` text, while the screen
wrote `STOP ST20 QUAL`: a line stop raised on the terminal showed as reason "?", "0 s down". From
this revision the andon use cases write the facts into these columns and `detail` is only text.

Backfill: every existing andon row (`andon_id` set) whose andon is in the `andon` table gets that
andon's kind, reason and station, and the resolve row of a STOP its downtime (resolved_at -
raised_at, what the use case computes). Rows are marked `backfilled = 1`: their hash was written
over the original fields only and stays as it is, so `verify-log` still passes and the derived
fields are honestly outside the chain. What cannot be derived: andon rows with no `andon` row (logs
made by the history generator before this revision, or imported) keep NULL facts; the loop of an
old material andon is not written into `loop_id` (a hashed field), metrics join the card instead.

The append-only triggers are dropped for the backfill and recreated at once, inside the migration's
transaction: nothing else can write meanwhile.

Revision ID: 0006
Revises: 0005
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
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
    op.add_column("card_log", sa.Column("andon_kind", sa.String(), nullable=True))
    op.add_column("card_log", sa.Column("andon_reason", sa.String(), nullable=True))
    op.add_column("card_log", sa.Column("station", sa.String(), nullable=True))
    op.add_column("card_log", sa.Column("downtime_s", sa.Float(), nullable=True))
    op.add_column("card_log", sa.Column("backfilled", sa.Boolean(), nullable=True))
    _backfill()
    # The station filter now compares a column on the page it walks (services/log_query.py): the
    # covering index over raise rows' detail has no reader left. No index on `station` either: the
    # filter's OR with `+loop_id` walks the log by id, and every log row would pay for it.
    op.drop_index("ix_card_log_andon_raised", "card_log")


def _backfill() -> None:
    conn = op.get_bind()
    andons = conn.exec_driver_sql("SELECT id, kind, reason, station, raised_at, resolved_at FROM andon").all()
    if not andons:
        return
    op.execute("DROP TRIGGER IF EXISTS card_log_no_update")
    facts = [
        {"id": a[0], "kind": a[1], "reason": a[2], "station": a[3], "down": _downtime(a[1], a[4], a[5])}
        for a in andons
    ]
    conn.execute(
        sa.text(
            "UPDATE card_log SET andon_kind = :kind, andon_reason = :reason, station = :station, "
            "downtime_s = CASE WHEN event = 'andon_resolved' THEN :down END, backfilled = 1 "
            "WHERE andon_id = :id"
        ),
        facts,
    )
    op.execute(_NO_UPDATE)


def _downtime(kind: str, raised_at: str, resolved_at: str | None) -> float | None:
    """A STOP's raise-to-resolve seconds, as `domain.andon.Andon.downtime` computes it."""
    if kind != "stop" or resolved_at is None:
        return None
    seconds = (datetime.fromisoformat(resolved_at) - datetime.fromisoformat(raised_at)).total_seconds()
    return max(0.0, seconds)


def downgrade() -> None:
    op.create_index(
        "ix_card_log_andon_raised",
        "card_log",
        ["andon_id", "detail"],
        sqlite_where=sa.text("event = 'andon_raised'"),
    )
    # Dropping columns rebuilds the table in batch mode, which drops its triggers: recreate them.
    op.execute("DROP TRIGGER IF EXISTS card_log_no_update")
    op.execute("DROP TRIGGER IF EXISTS card_log_no_delete")
    with op.batch_alter_table("card_log", schema=None) as batch_op:
        for name in ("backfilled", "downtime_s", "station", "andon_reason", "andon_kind"):
            batch_op.drop_column(name)
    op.execute(_NO_UPDATE)
    op.execute(_NO_DELETE)
