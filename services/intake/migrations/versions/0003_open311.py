"""Open311: API keys issued to GeoReport clients, what a client sent beside a petition, and an
index on petitions.submitted_at for listing requests by date.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_petitions_submitted_at"), "petitions", ["submitted_at"], unique=False)
    op.create_table(
        "open311_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
    )
    op.create_table(
        "open311_requests",
        sa.Column("petition_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("address_string", sa.String(length=300), nullable=True),
        sa.Column("address_id", sa.String(length=100), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("long", sa.Float(), nullable=True),
        sa.Column("media_url", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"], ["open311_keys.id"], name=op.f("fk_open311_requests_key_id_open311_keys")
        ),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_open311_requests_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("petition_id", name=op.f("pk_open311_requests")),
        sa.UniqueConstraint("token", name=op.f("uq_open311_requests_token")),
    )
    op.create_index(
        op.f("ix_open311_requests_key_id"), "open311_requests", ["key_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_open311_requests_key_id"), table_name="open311_requests")
    op.drop_table("open311_requests")
    op.drop_table("open311_keys")
    op.drop_index(op.f("ix_petitions_submitted_at"), table_name="petitions")
