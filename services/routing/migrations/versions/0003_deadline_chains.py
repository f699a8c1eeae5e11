"""One pending deadline row per case: the rung's later deadlines ride on it (`later`), and the
sweep plants the next one when it fires. Pending rows of the same case and rung are folded into
the earliest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_deadlines = sa.table(
    "deadlines",
    sa.column("id", sa.Integer),
    sa.column("case_id", sa.String),
    sa.column("rung", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("due_at", shared.db.UtcDateTime(timezone=True)),
    sa.column("fraction", sa.Float),
    sa.column("done_at", shared.db.UtcDateTime(timezone=True)),
    sa.column("later", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("later", sa.JSON(), nullable=True))
    d = _deadlines
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(
        sa.select(d.c.id, d.c.case_id, d.c.rung, d.c.kind, d.c.due_at, d.c.fraction)
        .where(d.c.done_at.is_(None))
        .order_by(d.c.case_id, d.c.rung, d.c.due_at, d.c.id)
    ).all()
    folded: list[int] = []
    for _, group in groupby(rows, key=lambda r: (r.case_id, r.rung)):
        first, *rest = list(group)
        if not rest:
            continue
        later = [[r.kind, r.due_at.astimezone(UTC).isoformat(), r.fraction] for r in rest]
        bind.execute(sa.update(d).where(d.c.id == first.id).values(later=later))
        folded.extend(r.id for r in rest)
    for start in range(0, len(folded), 500):
        bind.execute(
            sa.update(d).where(d.c.id.in_(folded[start : start + 500])).values(done_at=now)
        )


def downgrade() -> None:
    # The deadlines that rode on a row are not unfolded: the sweep of the older version sees
    # only the next one of each case.
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_column("later")
