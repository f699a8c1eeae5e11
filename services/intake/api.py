"""The public JSON API: submit a petition, look up its status, follow it with the tracking
token, answer a resolution, and list the units and categories for a form."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake import store
from services.intake.catalog import Catalog
from services.intake.petitions import (
    FieldError,
    InvalidSubmission,
    mask_email,
    mask_phone,
    parse_reference,
    status_label,
    validate_comment,
    validate_submission,
)
from shared.runtime import Runtime
from shared.web import ProblemError

MAX_BODY_BYTES = 64 * 1024


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


def tracking_view(row: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The resident's own view: the public one plus content, a masked contact and the timeline."""
    return {
        **public_view(row, catalog),
        "petition_id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "location": row["location"],
        "language": row["language"],
        "rung": row["rung"],
        "can_give_feedback": row["status"] == "resolved",
        "contact": {
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
        """Submit a petition. Nothing is stored unless every field is valid and consent is given."""
        data = await read_json_object(request)
        try:
            submission = validate_submission(data, catalog)
        except InvalidSubmission as exc:
            raise invalid(exc.errors) from None
        receipt = await store.submit_petition(
            runtime.engine, submission=submission, now=now(), public_url=public_url
        )
        runtime.relay.wake()
        return JSONResponse(
            {
                "petition_id": str(receipt.petition_id),
                "reference": receipt.reference,
                "tracking_token": receipt.tracking_token,
                "tracking_url": receipt.tracking_url,
                "status": receipt.status,
            },
            status_code=201,
            headers={"Location": f"/api/v1/petitions/{receipt.reference}"},
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
            tracking_view(row, catalog),
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
        except LookupError:
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
