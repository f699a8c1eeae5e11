"""The one scope rule (`shared.scope`) needs of each petition only its own unit and the members
who held it: the "unit" rows of the units that merely held it at some rung go, since they let a
member of such a unit see a case routing hides from them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_timeline = sa.table(
    "timeline",
    sa.column("petition_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("payload", sa.Text),
)
_access = sa.table(
    "petition_access",
    sa.column("petition_id", sa.String),
    sa.column("scope", sa.String),
    sa.column("ref", sa.String),
)


def _units_named(kind: str) -> set[tuple[str, str]]:
    """(petition, unit) pairs named by the timeline's events of this kind."""
    rows = op.get_bind().execute(
        sa.select(_timeline.c.petition_id, _timeline.c.payload).where(_timeline.c.kind == kind)
    )
    found = set()
    for petition_id, payload in rows:
        unit_id = json.loads(payload).get("unit_id")
        if unit_id:
            found.add((str(petition_id), str(unit_id)))
    return found


def upgrade() -> None:
    bind = op.get_bind()
    own = _units_named("submitted")
    rows = bind.execute(
        sa.select(_access.c.petition_id, _access.c.ref).where(_access.c.scope == "unit")
    ).all()
    stale = [{"p": p, "r": r} for p, r in rows if (p, r) not in own]
    if stale:
        bind.execute(
            sa.delete(_access).where(
                _access.c.scope == "unit",
                _access.c.petition_id == sa.bindparam("p"),
                _access.c.ref == sa.bindparam("r"),
            ),
            stale,
        )


def downgrade() -> None:
    bind = op.get_bind()
    present = set(
        bind.execute(
            sa.select(_access.c.petition_id, _access.c.ref).where(_access.c.scope == "unit")
        ).all()
    )
    missing = sorted(_units_named("assigned") - {(str(p), str(r)) for p, r in present})
    if missing:
        op.bulk_insert(_access, [{"petition_id": p, "scope": "unit", "ref": r} for p, r in missing])
