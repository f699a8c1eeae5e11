"""Channels and fallbacks, batching and quiet hours on notifications; staff inbox; meeting
digests; resolution statistics (per-petition facts, per-day counters per unit and member).

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

COUNTERS = (
    "received",
    "assigned",
    "responded",
    "response_n",
    "response_s",
    "resolved",
    "resolved_on_time",
    "resolution_n",
    "resolution_s",
    "escalated",
    "escalated_late",
    "reopened",
    "satisfied",
    "unsatisfied",
)


def upgrade() -> None:
    _notifications_batches_and_fallbacks()
    _inbox_and_digests()
    _statistics()


def _notifications_batches_and_fallbacks() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("petition_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("batch_key", sa.String(300), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.String(30), nullable=True))
        batch.add_column(sa.Column("fallbacks", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("fallback_of", _id, nullable=True))
        batch.create_index("ix_notifications_batch", ["batch_key", "status"])


def _inbox_and_digests() -> None:
    op.create_table(
        "staff_inbox",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False, unique=True),
        sa.Column("petition_id", sa.String(36), nullable=True),
        sa.Column("template", sa.String(50), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("body_vi", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("created_at", shared.db.UtcDateTime(), nullable=False),
        sa.Column("read_at", shared.db.UtcDateTime(), nullable=True),
    )
    op.create_index("ix_staff_inbox_member", "staff_inbox", ["member_id", "read_at"])
    op.create_table(
        "digests",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("unit_id", sa.String(100), nullable=False),
        sa.Column("meeting_at", shared.db.UtcDateTime(), nullable=False),
        sa.Column("since", shared.db.UtcDateTime(), nullable=False),
        sa.Column("created_at", shared.db.UtcDateTime(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.UniqueConstraint("unit_id", "meeting_at", name="uq_digests_unit_meeting"),
    )


def _statistics() -> None:
    op.create_table(
        "petition_facts",
        sa.Column("petition_id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(50), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("origin_unit_id", sa.String(100), nullable=True),
        sa.Column("unit_id", sa.String(100), nullable=True),
        sa.Column("member_id", sa.String(100), nullable=True),
        sa.Column("rung", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("submitted_at", shared.db.UtcDateTime(), nullable=True),
        sa.Column("first_response_at", shared.db.UtcDateTime(), nullable=True),
        sa.Column("resolved_at", shared.db.UtcDateTime(), nullable=True),
        sa.Column("closed_at", shared.db.UtcDateTime(), nullable=True),
        sa.Column("due_at", shared.db.UtcDateTime(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("escalation_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("satisfied", sa.Boolean(), nullable=True),
        sa.Column("rungs", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("contributions", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("updated_at", shared.db.UtcDateTime(), nullable=False),
    )
    op.create_index("ix_petition_facts_unit", "petition_facts", ["unit_id", "status"])
    op.create_index("ix_petition_facts_origin", "petition_facts", ["origin_unit_id", "status"])
    op.create_table(
        "stats_daily",
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("scope_id", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in COUNTERS
        ),
    )


def downgrade() -> None:
    op.drop_table("stats_daily")
    op.drop_index("ix_petition_facts_origin", table_name="petition_facts")
    op.drop_index("ix_petition_facts_unit", table_name="petition_facts")
    op.drop_table("petition_facts")
    op.drop_table("digests")
    op.drop_index("ix_staff_inbox_member", table_name="staff_inbox")
    op.drop_table("staff_inbox")
    op.execute("DELETE FROM notifications WHERE petition_id IS NULL")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_batch")
        batch.drop_column("fallback_of")
        batch.drop_column("fallbacks")
        batch.drop_column("hold_reason")
        batch.drop_column("batch_key")
        batch.alter_column("petition_id", existing_type=sa.String(36), nullable=False)
