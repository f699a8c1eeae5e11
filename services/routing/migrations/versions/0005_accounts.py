"""Accounts: the sign-in history (90 days) and one-time links to set a password.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signin_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("member_id", sa.String(length=100), nullable=False),
        sa.Column("at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signin_history_member_at", "signin_history", ["member_id", "at"])
    op.create_index("ix_signin_history_at", "signin_history", ["at"])
    op.create_table(
        "account_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("minted_at", shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("used_at", shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_links_member", "account_links", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_account_links_member", table_name="account_links")
    op.drop_table("account_links")
    op.drop_index("ix_signin_history_at", table_name="signin_history")
    op.drop_index("ix_signin_history_member_at", table_name="signin_history")
    op.drop_table("signin_history")
