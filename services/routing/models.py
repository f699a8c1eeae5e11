"""Routing's tables: the organisation (units, categories, members) and the cases it handles."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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

metadata = MetaData()

_AUTO_ID = BigInteger().with_variant(Integer, "sqlite")

units = Table(
    "units",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("parent_id", String(100), nullable=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
)

categories = Table(
    "categories",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name_vi", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    # Hours to resolve at rung 0, 1, 2, …; the last value serves every higher rung.
    Column("deadline_hours", JSON, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=True),
    Column("unit_id", String(100), ForeignKey("units.id"), nullable=False),
    Column("role", String(20), nullable=False),
    # A list of category ids, or ["*"] for every category.
    Column("categories", JSON, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("away_from", UtcDateTime, nullable=True),
    Column("away_until", UtcDateTime, nullable=True),
    Column("last_assigned_at", UtcDateTime, nullable=True),
    # The start of the absence whose open cases were already handed to the leader.
    Column("absence_applied_from", UtcDateTime, nullable=True),
    Index("ix_members_unit", "unit_id"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("petition_id", String(36), nullable=False, unique=True),
    Column("correlation_id", String(36), nullable=False),
    Column("reference", String(50), nullable=False),
    Column("unit_id", String(100), nullable=False),
    Column("category_id", String(100), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("location", Text, nullable=True),
    # The point the resident gave (WGS 84 degrees), if any; cleared by a redaction.
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
    Column("language", String(10), nullable=False, server_default="vi"),
    Column("status", String(30), nullable=False),
    Column("rung", Integer, nullable=False),
    Column("holder_member_id", String(100), nullable=True),
    Column("holder_unit_id", String(100), nullable=True),
    # Why the case needs a leader's eye: "top_rung" (nowhere higher to go), "unassigned", …
    Column("flag", String(50), nullable=True),
    # When the holder must resolve (None while the clock is stopped), and acknowledge.
    Column("due_at", UtcDateTime, nullable=True),
    Column("ack_due_at", UtcDateTime, nullable=True),
    # While waiting for the resident: the question, and the working time left to resolve.
    Column("question_id", String(36), nullable=True),
    Column("paused_remaining_s", Float, nullable=True),
    # The resident's last honoured request to escalate (rate limit).
    Column("resident_request_at", UtcDateTime, nullable=True),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    # Every change bumps it; updates are compare-and-set on it.
    Column("version", Integer, nullable=False),
    Index("ix_cases_holder_status", "holder_member_id", "status"),
    Index("ix_cases_unit", "unit_id"),
    Index(
        "ix_cases_open_due",
        "due_at",
        sqlite_where=Column("closed_at").is_(None),
        postgresql_where=Column("closed_at").is_(None),
    ),
)

case_history = Table(
    "case_history",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("kind", String(30), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=True),
    # The member the entry is about (the new holder of an assignment, the author of a note).
    Column("member_id", String(100), nullable=True),
    Column("rung", Integer, nullable=True),
    Column("detail", JSON, nullable=False),
    Index("ix_case_history_case", "case_id", "id"),
)

# Deadline rows are the truth of what is due: the next thing that must happen at `due_at`
# unless the case moves first (the rung's later deadlines ride on it). The sweep reads only rows that are due (the partial index), so its
# cost follows the due cases, not the open ones. A row is finished (done_at) when it fires or when
# the case leaves the rung; the case row's lock guards its deadline rows.
deadlines = Table(
    "deadlines",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("rung", Integer, nullable=False),
    # ack | resolve | reminder | heads_up | max_wait | top_daily
    Column("kind", String(20), nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("fraction", Float, nullable=True),
    Column("done_at", UtcDateTime, nullable=True),
    # The rung's deadlines after this one, [[kind, due_at, fraction], …] in order: a case has
    # one pending row, and the sweep plants the next when this one fires.
    Column("later", JSON, nullable=True),
    Index(
        "ix_deadlines_due",
        "due_at",
        sqlite_where=Column("done_at").is_(None),
        postgresql_where=Column("done_at").is_(None),
    ),
    Index(
        "ix_deadlines_case_pending",
        "case_id",
        sqlite_where=Column("done_at").is_(None),
        postgresql_where=Column("done_at").is_(None),
    ),
)

notes = Table(
    "notes",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("member_id", String(100), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_notes_case", "case_id"),
)

# One row per failed sign-in (or one being checked), under two keys: `user:<username>` and
# `addr:<client address>`. Every replica counts the same rows, so the limit holds whichever
# replica a client reaches; rows older than the window are deleted as new ones come.
signin_failures = Table(
    "signin_failures",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_signin_failures_key_at", "key", "at"),
    Index("ix_signin_failures_at", "at"),
)

# A staff sign-in: access tokens (short-lived JWTs naming `id` as `sid`) are minted from it
# until it expires or is revoked. Only a hash of the refresh token is kept.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("member_id", String(100), nullable=False),
    Column("refresh_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("refreshed_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    # signed_out | deactivated | role_changed | password_changed
    Column("revoked_reason", String(30), nullable=True),
    # When the revocation was written to the bus for the other services (None: not yet).
    Column("announced_at", UtcDateTime, nullable=True),
    Index("ix_staff_sessions_member", "member_id"),
    Index(
        "ix_staff_sessions_unannounced",
        "revoked_at",
        sqlite_where=Column("announced_at").is_(None),
        postgresql_where=Column("announced_at").is_(None),
    ),
)

# Every sign-in attempt for a known username: success, wrong_password, throttled or
# deactivated, with the client address and user agent (truncated). Kept 90 days: older rows
# go as new ones come. An unknown username is not recorded (it may be a password typed in the
# wrong box).
signin_history = Table(
    "signin_history",
    metadata,
    Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
    Column("member_id", String(100), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("address", String(100), nullable=False),
    Column("user_agent", String(200), nullable=False),
    Index("ix_signin_history_member_at", "member_id", "at"),
    Index("ix_signin_history_at", "at"),
)

# A one-time link to set a password (kind: invite | reset). Only a hash of its token is kept;
# the token is minted when notify asks for the link to send it (`rpc.routing.account_link.v1`),
# and minting again replaces it. Valid until `expires_at` (24 h), used once.
account_links = Table(
    "account_links",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("member_id", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("token_hash", String(64), nullable=True),
    Column("requested_by", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("minted_at", UtcDateTime, nullable=True),
    Column("used_at", UtcDateTime, nullable=True),
    Index("ix_account_links_member", "member_id"),
)

messaging = messaging_tables(metadata)
