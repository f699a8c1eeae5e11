"""Resident actions: open question, escalation requests, contact erasure, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("question_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("question_event_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("question_text", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("escalation_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("contact_erased_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("petition_id", sa.String(length=36), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_idempotency_keys_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.drop_column("contact_erased_at")
        batch_op.drop_column("escalation_requested_at")
        batch_op.drop_column("question_text")
        batch_op.drop_column("question_event_id")
        batch_op.drop_column("question_id")
