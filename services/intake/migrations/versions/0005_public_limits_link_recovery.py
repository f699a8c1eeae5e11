"""Public writes counted for the rate limit (`public_hits`, hashed keys only) and the residents'
requests for a new tracking link (`link_recoveries`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_hits",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_hits")),
    )
    op.create_index("ix_public_hits_key_at", "public_hits", ["key", "at"], unique=False)
    # Old rows are deleted by time as requests come.
    op.create_index("ix_public_hits_at", "public_hits", ["at"], unique=False)
    op.create_table(
        "link_recoveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("petition_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_link_recoveries_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_recoveries")),
    )
    op.create_index(
        op.f("ix_link_recoveries_petition_id"), "link_recoveries", ["petition_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_link_recoveries_petition_id"), table_name="link_recoveries")
    op.drop_table("link_recoveries")
    op.drop_index("ix_public_hits_at", table_name="public_hits")
    op.drop_index("ix_public_hits_key_at", table_name="public_hits")
    op.drop_table("public_hits")
