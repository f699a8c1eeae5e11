"""The public JSON API: submit a petition, look up its status, follow it with the tracking
token, answer a resolution, and list the units and categories for a form."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake import store
from services.intake.catalog import Catalog
from services.intake.errors import UnknownTrackingLink
from services.intake.petitions import (
    FieldError,
    InvalidSubmission,
    holder_label,
    mask_email,
    mask_phone,
    parse_reference,
    resident_actions,
    status_label,
    validate_comment,
    validate_submission,
)
from shared.runtime import Runtime
from shared.web import ProblemError, problem

MAX_BODY_BYTES = 64 * 1024
# Printable ASCII without spaces, as clients generate them (UUIDs, random strings).
_IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = (
    "Hệ thống tạm thời không lưu được, vui lòng thử lại sau ít phút / "
    "The database is unavailable for a moment, please retry"
)


def database_unavailable() -> JSONResponse:
    """503 for a database outage: nothing was stored, the same request may be sent again."""
    response = problem(503, DATABASE_UNAVAILABLE, type_="urn:petitions:problem:unavailable")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def read_limited_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 beyond `limit` without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, f"Nội dung vượt quá {limit} byte / Body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, f"Nội dung vượt quá {limit} byte / Body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json_object(request: Request) -> dict[str, Any]:
    """A JSON object body, or the problem that says what is wrong with it."""
    if not _is_json(request):
        raise ProblemError(
            415,
            "Cần gửi application/json / Send application/json",
            type_="urn:petitions:problem:media-type",
        )
    raw = await read_limited_body(request)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # RecursionError: nesting deep enough to exhaust the parser, within the size limit.
        raise ProblemError(
            400,
            "Nội dung không phải JSON hợp lệ / Body is not valid JSON",
            type_="urn:petitions:problem:validation",
            errors=[{"field": "body", "message": "not valid JSON"}],
        ) from None
    if not isinstance(data, dict):
        raise ProblemError(
            422,
            "Nội dung phải là một đối tượng JSON / Body must be a JSON object",
            type_="urn:petitions:problem:validation",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    return data


def invalid(errors: list[FieldError]) -> ProblemError:
    fields = ", ".join(dict.fromkeys(e.field for e in errors))
    return ProblemError(
        422,
        f"Trường không hợp lệ / Invalid fields: {fields}",
        type_="urn:petitions:problem:validation",
        errors=[
            {"field": e.field, "message": e.message_en, "message_vi": e.message_vi} for e in errors
        ],
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _status(status: str) -> dict[str, str]:
    vi, en = status_label(status)
    return {"vi": vi, "en": en}


def public_view(row: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """What anyone holding the reference may see: status and dates, no content, no contact."""
    category = catalog.categories.get(row["category_id"])
    return {
        "reference": row["reference"],
        "status": row["status"],
        "status_label": _status(row["status"]),
        "submitted_at": _iso(row["submitted_at"]),
        "status_changed_at": _iso(row["status_changed_at"]),
        "due_at": _iso(row["due_at"]),
        "unit": {"id": row["unit_id"], "name": catalog.path_name(row["unit_id"])},
        "category": {
            "id": row["category_id"],
            "name_vi": category.name_vi if category else row["category_id"],
            "name_en": category.name_en if category else row["category_id"],
        },
    }


def tracking_view(row: dict[str, Any], catalog: Catalog, now: datetime) -> dict[str, Any]:
    """The resident's own view: the public one plus content, a masked contact, the timeline and
    what the resident may do now."""
    actions = resident_actions(row, now)
    holder = holder_label(row["rung"]) if row["rung"] is not None else None
    return {
        **public_view(row, catalog),
        "petition_id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "location": row["location"],
        "language": row["language"],
        "rung": row["rung"],
        "holder": {"vi": holder[0], "en": holder[1]} if holder else None,
        "question": (
            {"id": row["question_id"], "text": row["question_text"]} if actions.answer else None
        ),
        "can_give_feedback": actions.give_feedback,
        "can_answer": actions.answer,
        "can_request_escalation": actions.request_escalation,
        "escalation_allowed_at": _iso(actions.escalation_allowed_at),
        "can_withdraw": actions.withdraw,
        "wants_updates": bool(row["wants_updates"]),
        "contact_erased": row["contact_erased_at"] is not None,
        "contact": None
        if row["contact_erased_at"] is not None
        else {
            "name": row["name"],
            "email": mask_email(row["email"]),
            "phone": mask_phone(row["phone"]),
        },
        "timeline": [
            {
                "kind": t["kind"],
                "occurred_at": _iso(t["occurred_at"]),
                "message_vi": t["message_vi"],
                "message_en": t["message_en"],
                "detail": t["detail"],
            }
            for t in row["timeline"]
        ],
    }


UNKNOWN_TRACKING_LINK = (
    "Không tìm thấy phản ánh cho liên kết này / No petition for this tracking link"
)


def api_router(runtime: Runtime, catalog: Catalog, public_url: str) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["petitions"])
    now: Callable[[], datetime] = runtime.clock.now

    @router.post("/petitions", status_code=201)
    async def submit(request: Request) -> JSONResponse:
        """Submit a petition. Nothing is stored unless every field is valid and consent is given.

        An `Idempotency-Key` header makes retries safe: the same key with the same body within
        24 hours returns the first petition (201 again, `Idempotent-Replayed: true`); the same
        key with another body is a 422 problem.
        """
        key = request.headers.get("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY_RE.match(key):
            raise ProblemError(
                400,
                "Idempotency-Key: 1–128 ký tự ASCII in được / 1–128 printable ASCII characters",
                type_="urn:petitions:problem:validation",
                errors=[{"field": "Idempotency-Key", "message": "1-128 printable ASCII"}],
            )
        data = await read_json_object(request)
        try:
            submission = validate_submission(data, catalog)
        except InvalidSubmission as exc:
            raise invalid(exc.errors) from None
        try:
            receipt = await store.submit_petition(
                runtime.engine,
                submission=submission,
                now=now(),
                public_url=public_url,
                idempotency_key=f"api:{key}" if key is not None else None,
            )
        except store.IdempotencyConflict as exc:
            if exc.reason == "different_request":
                raise ProblemError(
                    422,
                    "Idempotency-Key đã dùng cho một phản ánh khác / "
                    "Idempotency-Key was used for a different petition",
                    type_="urn:petitions:problem:idempotency-key-reused",
                ) from None
            raise ProblemError(
                409,
                "Phản ánh của khoá này đã xoá thông tin liên hệ / "
                "The petition for this key had its contact data erased",
                type_="urn:petitions:problem:idempotency-key-erased",
            ) from None
        except Exception as exc:
            if store.is_database_outage(exc):
                return database_unavailable()
            raise
        runtime.relay.wake()
        headers = {"Location": f"/api/v1/petitions/{receipt.reference}"}
        if receipt.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(
            {
                "petition_id": str(receipt.petition_id),
                "reference": receipt.reference,
                "tracking_token": receipt.tracking_token,
                "tracking_url": receipt.tracking_url,
                "status": receipt.status,
            },
            status_code=201,
            headers=headers,
        )

    @router.get("/petitions/{reference}")
    async def by_reference(reference: str) -> dict[str, Any]:
        canonical = parse_reference(reference)
        row = await store.petition_by_reference(runtime.engine, canonical) if canonical else None
        if row is None:
            raise ProblemError(
                404, "Không có phản ánh với mã số này / No petition with this reference"
            )
        return public_view(row, catalog)

    @router.get("/track/{token}")
    async def track(token: str) -> JSONResponse:
        row = await store.petition_by_token(runtime.engine, token)
        if row is None:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK)
        return JSONResponse(
            tracking_view(row, catalog, now()),
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @router.post("/track/{token}/feedback")
    async def feedback(token: str, request: Request) -> dict[str, Any]:
        """The resident answers a resolution once: resolved, or not (which reopens it)."""
        data = await read_json_object(request)
        resolved = data.get("resolved")
        if not isinstance(resolved, bool):
            raise invalid(
                [FieldError("resolved", "phải là true hoặc false", "must be true or false")]
            )
        try:
            comment = validate_comment(data.get("comment"))
        except InvalidSubmission as exc:
            raise invalid(exc.errors) from None
        try:
            status = await store.give_feedback(
                runtime.engine, token=token, resolved=resolved, comment=comment, now=now()
            )
        except UnknownTrackingLink:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK) from None
        except store.FeedbackNotExpected as exc:
            raise ProblemError(
                409,
                "Chỉ phản hồi được khi phản ánh đã được giải quyết và chưa có ý kiến / "
                "Feedback is only possible once, after a resolution",
                current_status=exc.status,
            ) from None
        runtime.relay.wake()
        return {"status": status, "status_label": _status(status)}

    async def optional_object(request: Request) -> dict[str, Any]:
        """An action's body: a JSON object, or nothing at all."""
        if not request.headers.get("content-type") and not await read_limited_body(request):
            return {}
        return await read_json_object(request)

    def text_field(data: dict[str, Any], field: str, *, required: bool = False) -> str | None:
        try:
            return validate_comment(data.get(field), field=field, required=required)
        except InvalidSubmission as exc:
            raise invalid(exc.errors) from None

    def not_allowed(exc: store.ActionNotAllowed) -> ProblemError:
        if exc.why == "other_question":
            return ProblemError(
                409,
                "Câu hỏi này không còn chờ trả lời / This question is no longer awaiting an answer",
                current_status=exc.status,
            )
        return ProblemError(
            409,
            "Trạng thái hiện tại của phản ánh không cho phép việc này / "
            "The petition's current status does not allow this",
            current_status=exc.status,
        )

    def done(status: str, **extra: Any) -> dict[str, Any]:
        runtime.relay.wake()
        return {"status": status, "status_label": _status(status), **extra}

    @router.post("/track/{token}/withdraw")
    async def withdraw(token: str, request: Request) -> dict[str, Any]:
        """The resident withdraws the petition (`reason` optional); nothing more can happen to it."""
        reason = text_field(await optional_object(request), "reason")
        try:
            status = await store.withdraw(runtime.engine, token=token, reason=reason, now=now())
        except UnknownTrackingLink:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK) from None
        except store.ActionNotAllowed as exc:
            raise not_allowed(exc) from None
        return done(status)

    @router.post("/track/{token}/answer")
    async def answer(token: str, request: Request) -> dict[str, Any]:
        """The resident answers the holder's open question (`question_id`, `answer`), once."""
        data = await read_json_object(request)
        try:
            question_id = uuid.UUID(str(data.get("question_id")))
        except ValueError:
            raise invalid(
                [FieldError("question_id", "mã câu hỏi không hợp lệ", "not a question id")]
            ) from None
        text = text_field(data, "answer", required=True)
        assert text is not None
        try:
            status = await store.answer_question(
                runtime.engine, token=token, question_id=question_id, answer=text, now=now()
            )
        except UnknownTrackingLink:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK) from None
        except store.ActionNotAllowed as exc:
            raise not_allowed(exc) from None
        return done(status)

    @router.post("/track/{token}/escalate")
    async def escalate(token: str, request: Request) -> JSONResponse:
        """An overdue case may be sent one rung up at the resident's request, once per 24 hours
        (429 with `allowed_at` and `Retry-After` when asked again sooner)."""
        comment = text_field(await optional_object(request), "comment")
        at = now()
        try:
            allowed_at = await store.request_escalation(
                runtime.engine, token=token, comment=comment, now=at
            )
        except UnknownTrackingLink:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK) from None
        except store.ActionNotAllowed as exc:
            raise not_allowed(exc) from None
        except store.EscalationRefused as exc:
            if exc.check == "too_soon" and exc.allowed_at is not None:
                response = problem(
                    429,
                    "Mỗi phản ánh chỉ được đề nghị chuyển lên cấp trên một lần trong 24 giờ / "
                    "Escalation can be asked once per 24 hours",
                    type_="urn:petitions:problem:escalation-too-soon",
                    allowed_at=exc.allowed_at.isoformat(),
                )
                wait = math.ceil((exc.allowed_at - at).total_seconds())
                response.headers["Retry-After"] = str(max(wait, 1))
                return response
            if exc.check == "not_overdue":
                raise ProblemError(
                    409,
                    "Phản ánh chưa quá hạn xử lý / The petition is not overdue yet",
                    type_="urn:petitions:problem:not-overdue",
                    due_at=_iso(exc.due_at),
                ) from None
            raise ProblemError(
                409,
                "Chỉ đề nghị được khi phản ánh đang được xử lý / "
                "Escalation can only be asked while the petition is being handled",
                type_="urn:petitions:problem:not-open",
            ) from None
        runtime.relay.wake()
        return JSONResponse({"requested": True, "next_allowed_at": allowed_at.isoformat()})

    @router.post("/track/{token}/stop-updates")
    async def stop_updates(token: str) -> dict[str, Any]:
        """The resident withdraws consent to be contacted about this petition."""
        try:
            changed = await store.stop_updates(runtime.engine, token=token, now=now())
        except UnknownTrackingLink:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK) from None
        return {"wants_updates": False, "changed": changed}

    @router.post("/track/{token}/erase")
    async def erase(token: str) -> dict[str, Any]:
        """The resident's contact data is erased; the petition itself stays, anonymous."""
        try:
            changed = await store.erase_contact(runtime.engine, token=token, now=now())
        except UnknownTrackingLink:
            raise ProblemError(404, UNKNOWN_TRACKING_LINK) from None
        return {"contact_erased": True, "changed": changed}

    @router.get("/units")
    async def units() -> list[dict[str, Any]]:
        return [
            {
                "id": u.id,
                "parent_id": u.parent_id,
                "kind": u.kind,
                "name": u.name,
                "path_name": catalog.path_name(u.id),
                "selectable": catalog.is_selectable(u.id),
            }
            for u in catalog.units.values()
        ]

    @router.get("/categories")
    async def categories() -> list[dict[str, str]]:
        return [
            {"id": c.id, "name_vi": c.name_vi, "name_en": c.name_en}
            for c in catalog.categories.values()
        ]

    return router
