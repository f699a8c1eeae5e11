"""The optional point a resident gives with a petition (latitude and longitude, WGS 84).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("petitions", sa.Column("latitude", sa.Float(), nullable=True))
    op.add_column("petitions", sa.Column("longitude", sa.Float(), nullable=True))


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column in place: no copy-and-rename of a table that others
    # reference.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE petitions DROP COLUMN longitude")
        op.execute("ALTER TABLE petitions DROP COLUMN latitude")
    else:
        op.drop_column("petitions", "longitude")
        op.drop_column("petitions", "latitude")
