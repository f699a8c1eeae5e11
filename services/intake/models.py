"""Intake's tables: petitions as submitted, residents' contacts (the only copy), the public
timeline residents see, and the shared outbox/inbox/dead-letter tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from shared.db import UtcDateTime
from shared.messaging import messaging_tables

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

petitions = Table(
    "petitions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(16), nullable=False, unique=True),
    Column("tracking_token_hash", String(64), nullable=False, unique=True),
    Column("unit_id", String(100), nullable=False),
    Column("category_id", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("location", String(300), nullable=True),
    Column("language", String(5), nullable=False),
    Column("status", String(32), nullable=False),
    # When the status last changed, by whichever clock changed it (shown to the resident).
    Column("status_changed_at", UtcDateTime, nullable=False),
    # occurred_at of the last routing event applied: later events win, older ones only add history.
    Column("status_event_at", UtcDateTime, nullable=True),
    Column("due_at", UtcDateTime, nullable=True),
    Column("rung", Integer, nullable=True),
    # The submission event's id: the correlation id of everything that follows.
    Column("correlation_id", String(36), nullable=False),
    # The resolution the resident may answer; feedback is derived from it.
    Column("resolution_event_id", String(36), nullable=True),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column(
        "petition_id",
        String(36),
        ForeignKey("petitions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(100), nullable=True),
    Column("phone", String(20), nullable=True),
    Column("email", String(254), nullable=True),
    Column("wants_updates", Boolean, nullable=False),
    # Kept so notify can send the tracking link; only its hash is on the petition.
    Column("tracking_token", String(64), nullable=True),
)

public_timeline = Table(
    "public_timeline",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column(
        "petition_id",
        String(36),
        ForeignKey("petitions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("message_vi", Text, nullable=False),
    Column("message_en", Text, nullable=False),
    # Text shown to the resident as is (escaped), e.g. the member's explanation of a resolution.
    Column("detail", Text, nullable=True),
)

messaging = messaging_tables(metadata)
