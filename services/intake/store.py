"""Reading and writing petitions: each function is one transaction, with its events in the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.intake.errors import (
    ActionNotAllowed,
    EscalationNotOpen,
    EscalationTooSoon,
    FeedbackNotExpected,
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    NotOverdue,
    UnknownTrackingLink,
)
from services.intake.models import (
    contacts,
    idempotency_keys,
    messaging,
    petitions,
    public_timeline,
    tracking_tokens,
)
from services.intake.petitions import (
    ESCALATION_REQUEST_EVERY,
    FINAL_STATUSES,
    Submission,
    escalation_check,
    hash_token,
    new_reference,
    new_tracking_token,
    submission_fingerprint,
    tracking_url,
)
from shared.events import (
    EscalationRequested,
    Event,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
    derived_id,
)
from shared.messaging import add_to_outbox

PRODUCER = "intake"
# A 40-bit reference collides about once in a million petitions at a million stored; retrying a
# handful of times makes a failed submission practically impossible.
_UNIQUE_ATTEMPTS = 5
# A repeated request with the same idempotency key returns the first petition within this window.
IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Receipt:
    petition_id: uuid.UUID
    reference: str
    tracking_token: str
    tracking_url: str
    status: str
    event_id: uuid.UUID | None
    # True when an idempotency key matched: this is the petition an earlier request created.
    replayed: bool = False

    @classmethod
    def new(cls, event: PetitionSubmitted, token: str, public_url: str) -> Receipt:
        """The receipt of the petition `event` announces, just stored."""
        return cls(
            petition_id=event.petition_id,
            reference=event.reference,
            tracking_token=token,
            tracking_url=tracking_url(public_url, token),
            status="submitted",
            event_id=event.event_id,
        )


async def submit_petition(
    engine: AsyncEngine,
    *,
    submission: Submission,
    now: datetime,
    public_url: str,
    idempotency_key: str | None = None,
    also: Callable[[AsyncConnection, uuid.UUID], Awaitable[None]] | None = None,
) -> Receipt:
    """Store the petition, its contact and its first timeline line, and queue `PetitionSubmitted`,
    all in one transaction: an acknowledged petition is never lost and never unannounced.

    With an idempotency key, a second request carrying it within IDEMPOTENCY_WINDOW gets the
    first request's petition back (`replayed`), and one with a different submission is refused
    (`IdempotencyConflict`). Two requests racing with one key: the key's primary key lets one
    insert win; the other rolls back and replays it.

    `also` adds the caller's own rows for the new petition (Open311's record of the client that
    sent it) in the same transaction, so they exist exactly when the petition does.
    """
    fingerprint = submission_fingerprint(submission)
    for attempt in range(_UNIQUE_ATTEMPTS):
        petition_id = uuid.uuid4()
        reference = new_reference()
        token = new_tracking_token()
        event = _submitted(submission, petition_id, reference, now)
        # Every row is built before the transaction opens: on SQLite the one connection is held
        # only for the statements themselves.
        rows = _petition_rows(submission, petition_id, reference, token, event, now)
        key_row = (
            {"key": idempotency_key, "petition_id": str(petition_id)}
            | {"request_hash": fingerprint, "created_at": now}
            if idempotency_key is not None
            else None
        )
        try:
            async with engine.begin() as conn:
                if idempotency_key is not None:
                    earlier = await _replay(conn, idempotency_key, fingerprint, now, public_url)
                    if earlier is not None:
                        return earlier
                await _insert_petition(conn, rows, event)
                if also is not None:
                    await also(conn, petition_id)
                if key_row is not None:
                    await conn.execute(_INSERT_IDEMPOTENCY_KEY, key_row)
        except IntegrityError:
            if idempotency_key is not None:
                async with engine.begin() as conn:
                    earlier = await _replay(conn, idempotency_key, fingerprint, now, public_url)
                if earlier is not None:
                    return earlier
            # Otherwise only a reference or token collision can break a constraint: draw again.
            if attempt == _UNIQUE_ATTEMPTS - 1:
                raise
            continue
        return Receipt.new(event, token, public_url)
    raise AssertionError("unreachable")


def _submitted(
    submission: Submission, petition_id: uuid.UUID, reference: str, now: datetime
) -> PetitionSubmitted:
    """The event that announces the petition: its content, never the resident's contact."""
    return PetitionSubmitted.new(
        producer=PRODUCER,
        petition_id=petition_id,
        occurred_at=now,
        reference=reference,
        unit_id=submission.unit_id,
        category_id=submission.category_id,
        title=submission.title,
        description=submission.description,
        location=submission.location,
        latitude=submission.latitude,
        longitude=submission.longitude,
        language=submission.language,
        wants_updates=submission.wants_updates,
    )


async def _replay(
    conn: AsyncConnection, key: str, fingerprint: str, now: datetime, public_url: str
) -> Receipt | None:
    """The receipt of the petition `key` created, if it is still within the window."""
    row = (
        (
            await conn.execute(
                select(
                    idempotency_keys.c.request_hash,
                    idempotency_keys.c.created_at,
                    petitions.c.id,
                    petitions.c.reference,
                    petitions.c.status,
                    petitions.c.contact_erased_at,
                )
                .join(petitions, petitions.c.id == idempotency_keys.c.petition_id)
                .where(idempotency_keys.c.key == key)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    if row["created_at"] <= now - IDEMPOTENCY_WINDOW:
        # An old key is free again: the earlier petition is long acknowledged.
        await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.key == key))
        return None
    if row["request_hash"] != fingerprint:
        raise IdempotencyKeyReused
    if row["contact_erased_at"] is not None:
        # The resident erased their data: a retry of their submission gets no new link either.
        raise IdempotencyKeyErased
    # The first receipt's token was never stored: the retry gets a fresh one for the same petition.
    token = await mint_tracking_token(conn, row["id"], now)
    return Receipt(
        petition_id=uuid.UUID(row["id"]),
        reference=row["reference"],
        tracking_token=token,
        tracking_url=tracking_url(public_url, token),
        status=row["status"],
        event_id=None,
        replayed=True,
    )


@dataclass(frozen=True)
class _PetitionRows:
    petition: dict[str, Any]
    contact: dict[str, Any]
    timeline: dict[str, Any]


# Built once: executed with a parameter dict, so SQLAlchemy finds the compiled form in its cache
# without rebuilding and hashing a `.values(...)` clause on every submission.
_INSERT_PETITION = insert(petitions)
_INSERT_CONTACT = insert(contacts)
_INSERT_TOKEN = insert(tracking_tokens)
_INSERT_TIMELINE = insert(public_timeline)
_INSERT_IDEMPOTENCY_KEY = insert(idempotency_keys)

_PETITION_COLUMNS = (
    "id",
    "reference",
    "tracking_token_hash",
    "unit_id",
    "category_id",
    "title",
    "description",
    "location",
    "latitude",
    "longitude",
    "language",
    "status",
    "status_changed_at",
    "status_event_at",
    "correlation_id",
    "submitted_at",
    "created_at",
)
_CONTACT_COLUMNS = ("petition_id", "name", "phone", "email", "wants_updates")
_TIMELINE_COLUMNS = (
    "petition_id",
    "event_id",
    "kind",
    "occurred_at",
    "message_vi",
    "message_en",
    "detail",
)


def _bound(prefix: str, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: bindparam(f"{prefix}{c}") for c in columns}


# PostgreSQL: the petition, its contact and its timeline line in one statement (data-modifying
# CTEs; foreign keys are checked at the end of the statement), one round trip instead of three.
_INSERT_PETITION_PG = (
    insert(public_timeline)
    .values(_bound("t_", _TIMELINE_COLUMNS))
    .add_cte(insert(petitions).values(_bound("p_", _PETITION_COLUMNS)).cte("new_petition"))
    .add_cte(insert(contacts).values(_bound("c_", _CONTACT_COLUMNS)).cte("new_contact"))
)


def _petition_rows(
    s: Submission,
    petition_id: uuid.UUID,
    reference: str,
    token: str,
    event: PetitionSubmitted,
    now: datetime,
) -> _PetitionRows:
    pid = str(petition_id)
    event_id = str(event.event_id)
    return _PetitionRows(
        petition={
            "id": pid,
            "reference": reference,
            "tracking_token_hash": hash_token(token),
            "unit_id": s.unit_id,
            "category_id": s.category_id,
            "title": s.title,
            "description": s.description,
            "location": s.location,
            "latitude": s.latitude,
            "longitude": s.longitude,
            "language": s.language,
            "status": "submitted",
            "status_changed_at": now,
            "status_event_at": None,
            "correlation_id": event_id,
            "submitted_at": now,
            "created_at": now,
        },
        contact={
            "petition_id": pid,
            "name": s.name,
            "phone": s.phone,
            "email": s.email,
            "wants_updates": s.wants_updates,
        },
        timeline={
            "petition_id": pid,
            "event_id": event_id,
            "kind": "submitted",
            "occurred_at": now,
            "message_vi": f"Đã tiếp nhận phản ánh, mã số {reference}.",
            "message_en": f"Petition received, reference {reference}.",
            "detail": None,
        },
    )


async def _insert_petition(
    conn: AsyncConnection, rows: _PetitionRows, event: PetitionSubmitted
) -> None:
    if conn.dialect.name == "postgresql":
        params = {f"p_{k}": v for k, v in rows.petition.items()}
        params.update({f"c_{k}": v for k, v in rows.contact.items()})
        params.update({f"t_{k}": v for k, v in rows.timeline.items()})
        await conn.execute(_INSERT_PETITION_PG, params)
    else:
        await conn.execute(_INSERT_PETITION, rows.petition)
        await conn.execute(_INSERT_CONTACT, rows.contact)
        await conn.execute(_INSERT_TIMELINE, rows.timeline)
    await add_to_outbox(conn, messaging.outbox, event)


async def petition_by_reference(engine: AsyncEngine, reference: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(petitions).where(petitions.c.reference == reference)))
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def petition_by_token(engine: AsyncEngine, token: str) -> dict[str, Any] | None:
    """The petition whose tracking token this is, with its contact and public timeline."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        petitions,
                        contacts.c.name,
                        contacts.c.email,
                        contacts.c.phone,
                        contacts.c.wants_updates,
                    )
                    .join(contacts, contacts.c.petition_id == petitions.c.id, isouter=True)
                    .where(_opened_by(token))
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        timeline = (
            (
                await conn.execute(
                    select(public_timeline)
                    .where(public_timeline.c.petition_id == row["id"])
                    .order_by(public_timeline.c.occurred_at, public_timeline.c.id)
                )
            )
            .mappings()
            .all()
        )
    return {**dict(row), "timeline": [dict(t) for t in timeline]}


async def give_feedback(
    engine: AsyncEngine,
    *,
    token: str,
    resolved: bool,
    comment: str | None,
    now: datetime,
) -> str:
    """Record the resident's answer to a resolution and queue `FeedbackGiven`; returns the new
    status. Compare-and-set on "resolved", so one resolution gets one answer."""
    async with engine.begin() as conn:
        row = await _petition_for_update(conn, token)
        if row["status"] != "resolved" or row["resolution_event_id"] is None:
            raise FeedbackNotExpected(row["status"])
        changed = await conn.execute(
            update(petitions)
            .where(and_(petitions.c.id == row["id"], petitions.c.status == "resolved"))
            .values(status="feedback_given", status_changed_at=now)
        )
        if changed.rowcount != 1:
            raise FeedbackNotExpected("feedback_given")
        resolution_id = uuid.UUID(row["resolution_event_id"])
        event = _resident_event(
            FeedbackGiven,
            row,
            now,
            # Derived from the resolution: one answer per resolution, even if replayed.
            event_id=derived_id(row["id"], resolution_id, "feedback_given"),
            causation_id=resolution_id,
            resolved=resolved,
            comment=comment,
        )
        await _record_action(
            conn,
            row,
            event,
            kind="feedback_given",
            now=now,
            vi="Bạn cho biết: " + ("đã được giải quyết." if resolved else "chưa được giải quyết."),
            en="You said: " + ("resolved." if resolved else "not resolved."),
            detail=comment,
        )
    return "feedback_given"


async def contact_for(engine: AsyncEngine, petition_id: str) -> dict[str, Any] | None:
    """The petition's language and erasure mark with its contact (None fields once erased);
    None for an unknown petition."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(
                        petitions.c.language,
                        petitions.c.contact_erased_at,
                        contacts.c.name,
                        contacts.c.phone,
                        contacts.c.email,
                        contacts.c.wants_updates,
                    )
                    .join(contacts, contacts.c.petition_id == petitions.c.id, isouter=True)
                    .where(petitions.c.id == petition_id)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def petitions_by_references(
    engine: AsyncEngine, references: list[str]
) -> list[dict[str, Any]]:
    if not references:
        return []
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(petitions).where(petitions.c.reference.in_(references))))
            .mappings()
            .all()
        )
    by_reference = {r["reference"]: dict(r) for r in rows}
    return [by_reference[r] for r in references if r in by_reference]


async def count_petitions(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(petitions)) or 0)


def _opened_by(token: str) -> Any:
    """The condition on `petitions` that this is one of its tracking tokens: the submission's,
    on the petition, or one minted since, in `tracking_tokens`. Both are unique indexes."""
    hashed = hash_token(token)
    return petitions.c.id.in_(
        union_all(
            select(petitions.c.id).where(petitions.c.tracking_token_hash == hashed),
            select(tracking_tokens.c.petition_id).where(tracking_tokens.c.token_hash == hashed),
        )
    )


async def mint_tracking_token(conn: AsyncConnection, petition_id: str, now: datetime) -> str:
    """A new tracking token for the petition, in the caller's transaction: its hash is stored,
    the token itself is handed to the caller once and kept nowhere."""
    token = new_tracking_token()
    await conn.execute(
        _INSERT_TOKEN,
        {"token_hash": hash_token(token), "petition_id": petition_id, "created_at": now},
    )
    return token


async def _petition_for_update(conn: AsyncConnection, token: str) -> dict[str, Any]:
    row = (await conn.execute(select(petitions).where(_opened_by(token)))).mappings().first()
    if row is None:
        raise UnknownTrackingLink
    return dict(row)


def _resident_event(cls: type[Event], row: Mapping[str, Any], now: datetime, **fields: Any) -> Any:
    fields.setdefault("event_id", uuid.uuid4())
    return cls(
        occurred_at=now,
        petition_id=uuid.UUID(row["id"]),
        producer=PRODUCER,
        correlation_id=uuid.UUID(row["correlation_id"]),
        **fields,
    )


async def _timeline(
    conn: AsyncConnection,
    row: Mapping[str, Any],
    *,
    event_id: uuid.UUID,
    kind: str,
    now: datetime,
    vi: str,
    en: str,
    detail: str | None = None,
) -> None:
    await conn.execute(
        insert(public_timeline).values(
            petition_id=row["id"],
            event_id=str(event_id),
            kind=kind,
            occurred_at=now,
            message_vi=vi,
            message_en=en,
            detail=detail,
        )
    )


async def _record_action(
    conn: AsyncConnection,
    row: Mapping[str, Any],
    event: Event,
    *,
    kind: str,
    now: datetime,
    vi: str,
    en: str,
    detail: str | None = None,
) -> None:
    """What the resident did: a line on their timeline and the event, in the caller's transaction."""
    await _timeline(
        conn, row, event_id=event.event_id, kind=kind, now=now, vi=vi, en=en, detail=detail
    )
    await add_to_outbox(conn, messaging.outbox, event)


async def _set_status(
    conn: AsyncConnection, row: dict[str, Any], status: str, now: datetime, **values: Any
) -> None:
    """Compare-and-set from the status we read; a concurrent change makes this a conflict."""
    changed = await conn.execute(
        update(petitions)
        .where(and_(petitions.c.id == row["id"], petitions.c.status == row["status"]))
        .values(status=status, status_changed_at=now, **values)
    )
    if changed.rowcount != 1:
        raise ActionNotAllowed(row["status"], "changed")


async def withdraw(engine: AsyncEngine, *, token: str, reason: str | None, now: datetime) -> str:
    """The resident withdraws an open petition; nothing more can be done with it afterwards.
    One `PetitionWithdrawn` per petition (its id is derived from the petition)."""
    async with engine.begin() as conn:
        row = await _petition_for_update(conn, token)
        if row["status"] in FINAL_STATUSES:
            raise ActionNotAllowed(row["status"])
        await _set_status(
            conn,
            row,
            "withdrawn",
            now,
            due_at=None,
            question_id=None,
            question_event_id=None,
            question_text=None,
        )
        event = _resident_event(
            PetitionWithdrawn,
            row,
            now,
            event_id=derived_id(row["id"], "withdrawn"),
            reason=reason,
        )
        await _record_action(
            conn,
            row,
            event,
            kind="withdrawn",
            now=now,
            vi="Bạn đã rút phản ánh.",
            en="You withdrew the petition.",
            detail=reason,
        )
    return "withdrawn"


async def answer_question(
    engine: AsyncEngine, *, token: str, question_id: uuid.UUID, answer: str, now: datetime
) -> str:
    """The resident answers the holder's open question, once: the question is then closed on
    the tracking page and the case shows as in progress again (routing resumes its clock)."""
    async with engine.begin() as conn:
        row = await _petition_for_update(conn, token)
        if row["status"] != "waiting_for_resident" or row["question_id"] is None:
            raise ActionNotAllowed(row["status"])
        if row["question_id"] != str(question_id):
            raise ActionNotAllowed(row["status"], "other_question")
        changed = await conn.execute(
            update(petitions)
            .where(
                and_(
                    petitions.c.id == row["id"],
                    petitions.c.status == "waiting_for_resident",
                    petitions.c.question_id == str(question_id),
                )
            )
            .values(
                status="in_progress",
                status_changed_at=now,
                question_id=None,
                question_event_id=None,
                question_text=None,
            )
        )
        if changed.rowcount != 1:
            raise ActionNotAllowed(row["status"], "changed")
        event = _resident_event(
            ResidentAnswered,
            row,
            now,
            # One answer per question, even if replayed.
            event_id=derived_id(row["id"], question_id, "answered"),
            causation_id=uuid.UUID(row["question_event_id"]) if row["question_event_id"] else None,
            question_id=question_id,
            answer=answer,
        )
        await _record_action(
            conn,
            row,
            event,
            kind="resident_answered",
            now=now,
            vi="Bạn đã trả lời câu hỏi của cán bộ.",
            en="You answered the member's question.",
            detail=answer,
        )
    return "in_progress"


async def request_escalation(
    engine: AsyncEngine, *, token: str, comment: str | None, now: datetime
) -> datetime:
    """The resident asks that an overdue case go one rung up (routing decides); at most once per
    24 hours per petition. Returns when the next request is allowed."""
    async with engine.begin() as conn:
        row = await _petition_for_update(conn, token)
        last = row["escalation_requested_at"]
        check, allowed_at = escalation_check(
            status=row["status"], due_at=row["due_at"], last_request_at=last, now=now
        )
        if check == "not_open":
            raise EscalationNotOpen
        if check == "not_overdue":
            raise NotOverdue(row["due_at"])
        if check == "too_soon":
            assert allowed_at is not None
            raise EscalationTooSoon(allowed_at, now=now)
        requested = petitions.c.escalation_requested_at
        changed = await conn.execute(
            update(petitions)
            .where(
                and_(
                    petitions.c.id == row["id"],
                    petitions.c.status == row["status"],
                    requested.is_(None) if last is None else requested == last,
                )
            )
            .values(escalation_requested_at=now)
        )
        if changed.rowcount != 1:
            raise ActionNotAllowed(row["status"], "changed")
        event = _resident_event(EscalationRequested, row, now, comment=comment)
        await _record_action(
            conn,
            row,
            event,
            kind="escalation_requested",
            now=now,
            vi="Bạn đã đề nghị chuyển phản ánh lên cấp trên vì quá hạn.",
            en="You asked for the overdue petition to be passed up.",
            detail=comment,
        )
    return now + ESCALATION_REQUEST_EVERY


async def stop_updates(engine: AsyncEngine, *, token: str, now: datetime) -> bool:
    """The resident withdraws consent to be contacted; True when it changed something.
    No event: notify asks intake before every message and hears `wants_updates: false`."""
    async with engine.begin() as conn:
        row = await _petition_for_update(conn, token)
        changed = await conn.execute(
            update(contacts)
            .where(and_(contacts.c.petition_id == row["id"], contacts.c.wants_updates.is_(True)))
            .values(wants_updates=False)
        )
        if changed.rowcount != 1:
            return False
        await _timeline(
            conn,
            row,
            event_id=uuid.uuid4(),
            kind="updates_stopped",
            now=now,
            vi="Bạn đã ngừng nhận thông báo.",
            en="You stopped progress messages.",
        )
    return True


async def erase_contact(engine: AsyncEngine, *, token: str, now: datetime) -> bool:
    """Erase the resident's contact data (name, phone, email); the petition's content stays here,
    marked `contact_erased_at`, for the resident's tracking page. True when it erased something.

    The resident keeps their tracking link (only its hash is stored), so they can still follow
    the petition; nobody can contact them any more. `PetitionRedacted` tells routing and notify
    to remove the resident's text from their copies.
    """
    async with engine.begin() as conn:
        row = await _petition_for_update(conn, token)
        changed = await conn.execute(
            update(petitions)
            .where(and_(petitions.c.id == row["id"], petitions.c.contact_erased_at.is_(None)))
            .values(contact_erased_at=now)
        )
        if changed.rowcount != 1:
            return False
        await conn.execute(delete(contacts).where(contacts.c.petition_id == row["id"]))
        # Routing and notify remove the resident's text from their copies (docs/intake.md).
        event = _resident_event(
            PetitionRedacted, row, now, event_id=derived_id(row["id"], "redacted")
        )
        await _record_action(
            conn,
            row,
            event,
            kind="contact_erased",
            now=now,
            vi="Thông tin liên hệ của bạn đã được xoá.",
            en="Your contact details were erased.",
        )
    return True
