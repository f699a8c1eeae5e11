"""notify's tables: each petition's timeline, the notifications with their delivery log, staff's
in-app inbox, meeting digests, and resolution statistics (per-petition facts and per-day
counters per unit and member, kept up to date in the event handlers' transactions).

Residents' contact data is never stored here: notify asks intake for it just before sending.
A member's work address is staff data and is kept on the notification that goes to them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    # NULL for what concerns no one petition (a meeting digest)
    Column("petition_id", String(36), nullable=True),
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
    # Rows with one batch key that are due together leave as one message.
    Column("batch_key", String(300), nullable=True),
    # Why a queued row waits: "batch" (collecting) or "quiet_hours" (held until morning).
    Column("hold_reason", String(30), nullable=True),
    # The channels still to try, in order, if this one fails for good (JSON list).
    Column("fallbacks", Text, nullable=False, server_default="[]"),
    # The notification whose permanent failure queued this one.
    Column("fallback_of", _id, nullable=True),
    # Times in a row the contact look-up found no directory (intake down or slow): retried
    # soon and without spending a delivery attempt, since the message itself is not at fault.
    Column("lookup_failures", Integer, nullable=False, server_default="0"),
    # The claim that holds the row now (a fresh token per claim): only it records an outcome.
    Column("lease_token", String(32), nullable=True),
    # When the holder began to send; cleared with the outcome. Set at a claim, the previous
    # send's outcome is unknown (its worker died or lost its lease): see delivery.py.
    Column("send_started_at", UtcDateTime, nullable=True),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_petition", "petition_id"),
    Index("ix_notifications_batch", "batch_key", "status"),
)

# What the one scope rule (`shared.scope`) needs of each petition: its own unit, the
# resident's ("unit"), and every member who held it ("member"). Filled from the events in the
# consumer's transaction, so access checks and filtered lists need no replay.
petition_access = Table(
    "petition_access",
    metadata,
    Column("petition_id", String(36), primary_key=True),
    # "unit" (the petition's own) or "member" (one who held it)
    Column("scope", String(10), primary_key=True),
    Column("ref", String(100), primary_key=True),
    Index("ix_petition_access_ref", "scope", "ref"),
)

staff_inbox = Table(
    "staff_inbox",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("member_id", String(100), nullable=False),
    # The in-app copy of one notification; unique so a redelivered event adds no second copy.
    Column("idempotency_key", String(300), nullable=False, unique=True),
    Column("petition_id", String(36), nullable=True),
    Column("template", String(50), nullable=False),
    Column("title_vi", Text, nullable=False),
    Column("title_en", Text, nullable=False),
    Column("body_vi", Text, nullable=False),
    Column("body_en", Text, nullable=False),
    Column("link", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("read_at", UtcDateTime, nullable=True),
    Index("ix_staff_inbox_member", "member_id", "read_at"),
)

digests = Table(
    "digests",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("unit_id", String(100), nullable=False),
    Column("meeting_at", UtcDateTime, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # What the digest showed, as JSON, so the printable page shows what the members were sent.
    Column("content", Text, nullable=False),
    UniqueConstraint("unit_id", "meeting_at", name="uq_digests_unit_meeting"),
)

petition_facts = Table(
    "petition_facts",
    metadata,
    Column("petition_id", String(36), primary_key=True),
    Column("reference", String(50), nullable=True),
    Column("title", Text, nullable=True),
    # The resident's unit, and the unit and member holding the case now.
    Column("origin_unit_id", String(100), nullable=True),
    Column("unit_id", String(100), nullable=True),
    Column("member_id", String(100), nullable=True),
    Column("rung", Integer, nullable=True),
    Column("status", String(30), nullable=False),
    Column("submitted_at", UtcDateTime, nullable=True),
    Column("first_response_at", UtcDateTime, nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("due_at", UtcDateTime, nullable=True),
    Column("reopen_count", Integer, nullable=False, server_default="0"),
    Column("escalation_count", Integer, nullable=False, server_default="0"),
    # The resident's last word: true settled, false not settled, NULL not asked or no answer.
    Column("satisfied", Boolean, nullable=True),
    # Each rung's holder, deadline and outcome (JSON list).
    Column("rungs", Text, nullable=False, server_default="[]"),
    # What this petition has added to `stats_daily`, so a change applies only the difference.
    Column("contributions", Text, nullable=False, server_default="{}"),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_petition_facts_unit", "unit_id", "status"),
    Index("ix_petition_facts_origin", "origin_unit_id", "status"),
)

STAT_COUNTERS = (
    "received",
    "assigned",
    "responded",
    "response_n",
    "response_s",
    "resolved",
    "resolved_on_time",
    "resolution_n",
    "resolution_s",
    "escalated",
    "escalated_late",
    "reopened",
    "satisfied",
    "unsatisfied",
)

stats_daily = Table(
    "stats_daily",
    metadata,
    # "unit" (the petition's own) or "member" (one who held it)
    Column("scope", String(10), primary_key=True),
    Column("scope_id", String(100), primary_key=True),
    # The local (Asia/Ho_Chi_Minh) day the counted things happened on.
    Column("day", Date, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in STAT_COUNTERS),
)

tables = messaging_tables(metadata)
