"""Who may see each petition (units and members it concerned), filled from the timeline; a
count of failed contact look-ups per notification.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    access = op.create_table(
        "petition_access",
        sa.Column("petition_id", sa.String(36), primary_key=True),
        sa.Column("scope", sa.String(10), primary_key=True),
        sa.Column("ref", sa.String(100), primary_key=True),
    )
    op.create_index("ix_petition_access_ref", "petition_access", ["scope", "ref"])
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column("lookup_failures", sa.Integer(), nullable=False, server_default="0")
        )
    # Petitions already on timelines get the same rows the handlers now write.
    timeline = sa.table(
        "timeline",
        sa.column("petition_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("payload", sa.Text),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(timeline.c.petition_id, timeline.c.kind, timeline.c.payload).where(
            timeline.c.kind.in_(("submitted", "assigned", "escalated"))
        )
    )
    found: set[tuple[str, str, str]] = set()
    for petition_id, kind, payload in rows:
        data = json.loads(payload)
        keys = {
            "submitted": (("unit", "unit_id"),),
            "assigned": (("unit", "unit_id"), ("member", "member_id")),
            "escalated": (("member", "from_member_id"),),
        }[kind]
        for scope, key in keys:
            if data.get(key):
                found.add((petition_id, scope, str(data[key])))
    if found:
        op.bulk_insert(
            access, [{"petition_id": p, "scope": s, "ref": r} for p, s, r in sorted(found)]
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("lookup_failures")
    op.drop_index("ix_petition_access_ref", table_name="petition_access")
    op.drop_table("petition_access")
