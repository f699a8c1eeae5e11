"""notify's tables: each petition's timeline, and the notifications with their delivery log.

Residents' contact data is never stored here: notify asks intake for it just before sending.
A member's work address is staff data and is kept on the notification that goes to them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from shared.db import UtcDateTime
from shared.messaging import messaging_tables

metadata = MetaData()

_id = BigInteger().with_variant(Integer, "sqlite")

timeline = Table(
    "timeline",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("petition_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("subject", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("summary_vi", Text, nullable=False),
    Column("summary_en", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_timeline_petition", "petition_id", "occurred_at"),
    Index("ix_timeline_occurred", "occurred_at"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("petition_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    # resident | member
    Column("recipient_kind", String(20), nullable=False),
    # a member id, or "resident" (the address is looked up at send time)
    Column("recipient_ref", String(100), nullable=False),
    # staff addresses only; always NULL for residents
    Column("recipient_address", String(320), nullable=True),
    Column("channel", String(20), nullable=False),
    Column("template", String(50), nullable=False),
    # what the template needs besides the contact, as JSON (never contact data)
    Column("context", Text, nullable=False),
    # queued | failed (will retry) | sent | skipped | dead
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_petition", "petition_id"),
)

tables = messaging_tables(metadata)
