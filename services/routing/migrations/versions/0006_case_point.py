"""The point a resident gave with a petition, on its case (latitude and longitude, WGS 84).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("latitude", sa.Float(), nullable=True))
    op.add_column("cases", sa.Column("longitude", sa.Float(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column in place: no copy-and-rename of a referenced table.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cases DROP COLUMN longitude")
        op.execute("ALTER TABLE cases DROP COLUMN latitude")
    else:
        op.drop_column("cases", "longitude")
        op.drop_column("cases", "latitude")
