"""Open311 GeoReport v2 (JSON only): categories as services, creating a petition from a
GeoReport client, and reading back its public status.

Mapping (see docs/intake.md): `service_code` is the category; `attribute[unit_id]` is the area
the resident lives in (GeoReport has no area tree, so it is a required service attribute);
`description` becomes the description and, cut to its first line, the title; `address_string`
and/or `lat`/`long` become the location; `first_name`/`last_name`, `email`, `phone` become the
contact. Consent to processing is implied by the API contract: a client may only send a request
the resident asked it to send, and by doing so it passes on the resident's consent. A resident
who left an email or phone gets progress messages, as GeoReport clients promise.

Reading returns the public status only, as for anyone holding the reference: no content, no
location, no contact. Errors follow the GeoReport format: `[{"code": 400, "description": …}]`.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.intake import store
from services.intake.api import read_limited_body
from services.intake.catalog import Catalog
from services.intake.petitions import (
    FINAL_STATUSES,
    TITLE_MAX,
    InvalidSubmission,
    clean_text,
    parse_reference,
    status_label,
    validate_submission,
)
from services.intake.web.pages import parse_form
from shared.runtime import Runtime
from shared.web import ProblemError

# Our field → the GeoReport parameter a client sent it as.
_PARAMETERS = {
    "category_id": "service_code",
    "unit_id": "attribute[unit_id]",
    "title": "description",
    "description": "description",
    "location": "address_string",
    "name": "first_name/last_name",
    "phone": "phone",
    "email": "email",
}
MAX_IDS = 50
TITLE_FROM_DESCRIPTION = 80


def georeport_error(status: int, *descriptions: str) -> JSONResponse:
    return JSONResponse(
        [{"code": status, "description": d} for d in descriptions], status_code=status
    )


def _lang(value: str | None) -> str:
    return "en" if (value or "").lower().startswith("en") else "vi"


def title_from(description: str) -> str:
    """A title for a petition that came without one: the description's first line, shortened
    at a word boundary."""
    first = clean_text(description).splitlines()[0] if description.strip() else ""
    if len(first) <= TITLE_FROM_DESCRIPTION:
        return first
    cut = first[: TITLE_FROM_DESCRIPTION - 1].rsplit(" ", 1)[0]
    return cut[: TITLE_MAX - 1] + "…"


def _coordinate(raw: str | None, name: str, limit: float, errors: list[str]) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{name}: không phải số / not a number")
        return None
    if not math.isfinite(value) or abs(value) > limit:
        errors.append(f"{name}: ngoài phạm vi / out of range")
        return None
    return value


def submission_from(form: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """A GeoReport create request as our submission's data, or the errors that prevent it."""
    errors: list[str] = []
    lat = _coordinate(form.get("lat"), "lat", 90, errors)
    long = _coordinate(form.get("long"), "long", 180, errors)
    address = clean_text(form.get("address_string", ""))
    where = address
    if lat is not None and long is not None:
        where = f"{address} ({lat:.6f}, {long:.6f})".strip()
    elif (lat is None) != (long is None) and not errors:
        errors.append("lat/long: cần cả hai / both are needed")
    if not where and not errors:
        errors.append("address_string, lat/long: cần địa điểm / a location is required")
    description = form.get("description", "")
    names = [clean_text(form.get(k, "")) for k in ("first_name", "last_name")]
    data: dict[str, Any] = {
        "unit_id": form.get("attribute[unit_id]"),
        "category_id": form.get("service_code"),
        "title": title_from(description),
        "description": description,
        "location": where or None,
        "name": " ".join(n for n in names if n) or None,
        "phone": form.get("phone") or None,
        "email": form.get("email") or None,
        "notify": True,
        # Implied by the API contract (module docstring, docs/intake.md).
        "consent": True,
        "language": _lang(form.get("locale")),
    }
    return data, errors


def open311_router(runtime: Runtime, catalog: Catalog, public_url: str) -> APIRouter:
    router = APIRouter(prefix="/open311/v2", tags=["open311"])

    def service(category_id: str, lang: str) -> dict[str, Any]:
        c = catalog.categories[category_id]
        return {
            "service_code": c.id,
            "service_name": c.name(lang),
            "description": f"{c.name_vi} / {c.name_en}",
            "metadata": True,
            "type": "realtime",
            "keywords": "",
            "group": "",
        }

    def request_view(row: dict[str, Any], lang: str) -> dict[str, Any]:
        vi, en = status_label(row["status"])
        category = catalog.categories.get(row["category_id"])
        return {
            "service_request_id": row["reference"],
            "status": "closed" if row["status"] in FINAL_STATUSES else "open",
            "status_notes": en if lang == "en" else vi,
            "service_name": category.name(lang) if category else row["category_id"],
            "service_code": row["category_id"],
            "agency_responsible": catalog.path_name(row["unit_id"]),
            "service_notice": "",
            "requested_datetime": row["submitted_at"].isoformat(),
            "updated_datetime": row["status_changed_at"].isoformat(),
            "expected_datetime": row["due_at"].isoformat() if row["due_at"] else None,
        }

    @router.get("/services.json")
    async def services(locale: str | None = None) -> list[dict[str, Any]]:
        """Every category, as a service; each has the `unit_id` attribute."""
        return [service(c, _lang(locale)) for c in catalog.categories]

    @router.get("/services/{service_code}.json")
    async def definition(service_code: str, locale: str | None = None) -> JSONResponse:
        if service_code not in catalog.categories:
            return georeport_error(404, f"service_code {service_code}: không có / not found")
        return JSONResponse(
            {
                "service_code": service_code,
                "attributes": [
                    {
                        "variable": True,
                        "code": "unit_id",
                        "datatype": "singlevaluelist",
                        "required": True,
                        "datatype_description": "Nơi người dân sống / Where the resident lives",
                        "order": 1,
                        "description": "Khóm/ấp, tổ dân phố / Neighbourhood or hamlet, group",
                        "values": [
                            {"key": u.id, "name": catalog.path_name(u.id)}
                            for u in catalog.selectable_units()
                        ],
                    }
                ],
            }
        )

    @router.post("/requests.json")
    async def create(request: Request) -> JSONResponse:
        """Create a petition from a form-encoded GeoReport request."""
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return georeport_error(
                415, "Cần application/x-www-form-urlencoded / Send form-encoded data"
            )
        try:
            form = parse_form(await read_limited_body(request))
        except ProblemError as exc:
            return georeport_error(exc.status, exc.detail)
        data, errors = submission_from(form)
        try:
            submission = validate_submission(data, catalog)
        except InvalidSubmission as exc:
            errors += [
                f"{_PARAMETERS.get(e.field, e.field)}: {e.message_vi} / {e.message_en}"
                for e in exc.errors
            ]
        if errors:
            return georeport_error(400, *dict.fromkeys(errors))
        try:
            receipt = await store.submit_petition(
                runtime.engine,
                submission=submission,
                now=runtime.clock.now(),
                public_url=public_url,
            )
        except Exception as exc:
            if store.is_database_outage(exc):
                return georeport_error(
                    503, "Tạm thời không lưu được, hãy thử lại / Unavailable, please retry"
                )
            raise
        runtime.relay.wake()
        return JSONResponse(
            [
                {
                    "service_request_id": receipt.reference,
                    "service_notice": "",
                    "account_id": None,
                }
            ],
            status_code=201,
        )

    async def find(ids: list[str], lang: str) -> list[dict[str, Any]]:
        references = [r for r in (parse_reference(i) for i in ids) if r]
        rows = await store.petitions_by_references(runtime.engine, references)
        return [request_view(r, lang) for r in rows]

    @router.get("/requests/{service_request_id}.json")
    async def one(service_request_id: str, locale: str | None = None) -> JSONResponse:
        found = await find([service_request_id], _lang(locale))
        if not found:
            return georeport_error(
                404, f"service_request_id {service_request_id}: không có / not found"
            )
        return JSONResponse(found)

    @router.get("/requests.json")
    async def many(
        service_request_id: str | None = None, locale: str | None = None
    ) -> JSONResponse:
        """Only by id: listing every request would let anyone enumerate the references."""
        ids = [i.strip() for i in (service_request_id or "").split(",") if i.strip()]
        if not ids:
            return georeport_error(
                400, "service_request_id: bắt buộc / required (comma-separated ids)"
            )
        if len(ids) > MAX_IDS:
            return georeport_error(400, f"service_request_id: tối đa / at most {MAX_IDS}")
        return JSONResponse(await find(ids, _lang(locale)))

    return router
