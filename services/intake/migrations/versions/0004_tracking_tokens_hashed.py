"""Tracking tokens only as hashes: `tracking_tokens` holds the hashes of the tokens minted after
the submission (one per message with a link), and the plaintext copy in `contacts` goes.

Each plaintext copy is hashed into `tracking_tokens` first (normally it is the submission's token,
whose hash the petition already has, so nothing is added), then the column is dropped: every link
a resident was ever given keeps working. Downgrading cannot bring the plaintext back: the column
returns empty, and notify then sends intake's address instead of a personal link.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:40:00.000000
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    tokens = op.create_table(
        "tracking_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("petition_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["petition_id"],
            ["petitions.id"],
            name=op.f("fk_tracking_tokens_petition_id_petitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_tracking_tokens")),
    )
    op.create_index(
        op.f("ix_tracking_tokens_petition_id"), "tracking_tokens", ["petition_id"], unique=False
    )
    _hash_plaintext_copies(tokens)
    # `contacts` is referenced by no other table, so SQLite's copy-and-rename of it (batch mode)
    # cascades nowhere.
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("tracking_token")


def _hash_plaintext_copies(tokens: sa.Table) -> None:
    """Every plaintext token whose hash is not already the petition's, into `tracking_tokens`."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT c.petition_id, c.tracking_token, p.tracking_token_hash FROM contacts c"
            " JOIN petitions p ON p.id = c.petition_id WHERE c.tracking_token IS NOT NULL"
        )
    ).all()
    now = datetime.now(UTC)
    missing = {
        digest: petition_id
        for petition_id, token, known in rows
        if (digest := hashlib.sha256(token.encode()).hexdigest()) != known
    }
    if missing:
        op.bulk_insert(
            tokens,
            [{"token_hash": h, "petition_id": p, "created_at": now} for h, p in missing.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracking_token", sa.String(length=64), nullable=True))
    op.drop_index(op.f("ix_tracking_tokens_petition_id"), table_name="tracking_tokens")
    op.drop_table("tracking_tokens")
