"""Intake's tables: petitions as submitted, residents' contacts (the only copy), the public
timeline residents see, and the shared outbox/inbox/dead-letter tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
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
    # The hash of the tracking token shown at submission (never the token); the tokens minted
    # later for messages are in `tracking_tokens`.
    Column("tracking_token_hash", String(64), nullable=False, unique=True),
    Column("unit_id", String(100), nullable=False),
    Column("category_id", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("location", String(300), nullable=True),
    # The optional point the resident gave (WGS 84 degrees, both or neither).
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
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
    # Open311 lists requests by submission time, newest first.
    Column("submitted_at", UtcDateTime, nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    # The holder's open question, while the resident may answer it (cleared by the answer or
    # by routing resuming the case).
    Column("question_id", String(36), nullable=True),
    Column("question_event_id", String(36), nullable=True),
    Column("question_text", Text, nullable=True),
    # When the resident last asked to escalate: at most once per 24 hours.
    Column("escalation_requested_at", UtcDateTime, nullable=True),
    # Set when the resident erased their contact data; the petition content stays.
    Column("contact_erased_at", UtcDateTime, nullable=True),
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
)

# Hashes of the tracking tokens minted after the submission, never a token: one for each message
# notify sends with a link (minted by the contact look-up, handed over once, forgotten) and one
# for each replayed receipt. Any of them, like the submission's, opens the petition, so links in
# older emails keep working.
tracking_tokens = Table(
    "tracking_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "petition_id",
        String(36),
        ForeignKey("petitions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("created_at", UtcDateTime, nullable=False),
)

# Public writes counted for the rate limit (`throttle.py`): the hash of what was counted (an
# address, a contact, a reference), never the value itself, and when.
public_hits = Table(
    "public_hits",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("key", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_public_hits_key_at", "key", "at"),
    Index("ix_public_hits_at", "at"),
)

# A resident's request for a new tracking link that matched the petition's contact: the id of
# the `TrackingLinkRequested` event, and which of the contacts matched (the contact itself stays
# in `contacts`). While it is recent, notify's contact look-up for the petition may carry a link
# to that contact even if the resident asked for no progress messages.
link_recoveries = Table(
    "link_recoveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "petition_id",
        String(36),
        ForeignKey("petitions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("channel", String(8), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
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

# A submission's idempotency key (the form's hidden token, or the API's `Idempotency-Key`)
# → the petition it created, so a repeated request returns that petition instead of a new one.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column(
        "petition_id",
        String(36),
        ForeignKey("petitions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # SHA-256 of the validated submission: the same key with another body is refused.
    Column("request_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

messaging = messaging_tables(metadata)

# Open311 clients: one row per API key an administrator issued; only the key's hash is kept.
open311_keys = Table(
    "open311_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    # The key's first characters, so an administrator can tell keys apart without the key.
    Column("key_prefix", String(16), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

# What a GeoReport client sent beside the petition (its structured location and photo link),
# and which client sent it: only that client reads these back.
open311_requests = Table(
    "open311_requests",
    metadata,
    Column(
        "petition_id",
        String(36),
        ForeignKey("petitions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key_id", String(36), ForeignKey("open311_keys.id"), nullable=False, index=True),
    # GeoReport's token: resolves to the request id (tokens/{token}); not a secret.
    Column("token", String(64), nullable=False, unique=True),
    Column("address_string", String(300), nullable=True),
    Column("address_id", String(100), nullable=True),
    Column("lat", Float, nullable=True),
    Column("long", Float, nullable=True),
    Column("media_url", String(2000), nullable=True),
)
