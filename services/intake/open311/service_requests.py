"""POST requests (a client creates a petition), GET requests (many, by GeoReport's filters)
and GET requests/{service_request_id}."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.intake import store
from services.intake.deps import AppRuntime, CatalogDep, ClientAddress, SettingsDep, ThrottleDep
from services.intake.errors import InvalidSubmission, TooManyRequests
from services.intake.open311 import render, views
from services.intake.open311.deps import Jurisdiction, ReaderKey, check_jurisdiction, key_id_of
from services.intake.open311.edge import PREFIX
from services.intake.open311.errors import (
    BodyTooLarge,
    InvalidRequest,
    NotFormEncoded,
    RateLimited,
    Unavailable,
    UnknownServiceRequest,
)
from services.intake.open311.queries import parse_query
from services.intake.open311.records import find_requests, recorder, requests_by_ids
from services.intake.open311.schemas import (
    Created,
    Format,
    GeoReportError,
    ServiceRequest,
)
from services.intake.open311.submission import described, language, submission_from
from services.intake.petitions import validate_submission
from shared.db import is_database_outage
from shared.webkit import forms

router = APIRouter(prefix=PREFIX, tags=["open311"])

MAX_BODY_BYTES = 64 * 1024
FORM_MEDIA_TYPE = forms.FORM_MEDIA_TYPE
_ERRORS = {"model": list[GeoReportError]}
# Documented, not enforced by FastAPI: `queries.parse_query` checks them and says what is wrong
# in GeoReport's words.
_DATE_TIME = Query(
    description="W3C (RFC 3339) with a time zone, e.g. 2026-01-01T00:00:00Z; "
    "start_date and end_date at most 90 days apart; empty is the same as absent (some "
    "GeoReport clients send every parameter)",
    json_schema_extra={
        "pattern": r"^$|^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$"
    },
)
_STATUS = Query(
    description="open, closed, or open,closed",
    json_schema_extra={"pattern": "^((open|closed)(,(open|closed))*)?$"},
)


async def read_form(request: Request) -> dict[str, str]:
    """The form-encoded body (first value of each field), refused beyond MAX_BODY_BYTES
    without reading the rest: the pages' reader, its refusals in GeoReport's terms."""
    try:
        return await forms.read_form(request, max_bytes=MAX_BODY_BYTES)
    except forms.FormRefused as exc:
        if exc.status == 413:
            raise BodyTooLarge(
                f"Nội dung vượt quá {MAX_BODY_BYTES} byte / Body exceeds {MAX_BODY_BYTES} bytes"
            ) from None
        raise NotFormEncoded from None


@router.post(
    "/requests.{format}",
    status_code=201,
    response_model=list[Created],
    responses=dict.fromkeys((400, 403, 404, 413, 415, 429, 503), _ERRORS),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/CreateForm"}}},
        }
    },
)
async def create_request(
    format: Format,
    request: Request,
    runtime: AppRuntime,
    catalog: CatalogDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    client: ClientAddress,
) -> Response:
    """Create a petition, exactly as the web form does (same validation, storage, event and
    tracking link for the resident), from a form-encoded GeoReport request sent with the
    client's `api_key` (in the body or the query)."""
    form = await read_form(request)
    check_jurisdiction(
        settings, form.get("jurisdiction_id") or request.query_params.get("jurisdiction_id")
    )
    key_id = await key_id_of(runtime, form.get("api_key") or request.query_params.get("api_key"))
    data, extra, errors = submission_from(form)
    try:
        submission = validate_submission(data, catalog)
    except InvalidSubmission as exc:
        errors += described(exc.errors)
    if errors:
        raise InvalidRequest(*errors)
    token = secrets.token_urlsafe(16)
    try:
        # Counted by the client's address like any public write (a GeoReport client sending
        # for many residents from one server shares one limit: docs/intake.md).
        await throttle.admit_submission(client, submission.email, submission.phone)
        receipt = await store.submit_petition(
            runtime.engine,
            submission=submission,
            now=runtime.clock.now(),
            public_url=settings.public_url,
            also=recorder(key_id=key_id, token=token, extra=extra),
        )
    except TooManyRequests as exc:
        raise RateLimited(exc.retry_after) from None
    except Exception as exc:
        if is_database_outage(exc):
            raise Unavailable from exc
        raise
    runtime.relay.wake()
    created = Created(
        service_request_id=receipt.reference,
        token=token,
        service_notice=views.created_notice(receipt.reference, language(form.get("locale"))),
        account_id=None,
    )
    return render.respond(format, "service_requests", [created], status=201)


@router.get(
    "/requests.{format}",
    response_model=list[ServiceRequest],
    responses=dict.fromkeys((400, 403, 404), _ERRORS),
)
async def list_requests(
    format: Format,
    runtime: AppRuntime,
    catalog: CatalogDep,
    _: Jurisdiction,
    reader: ReaderKey,
    service_request_id: Annotated[str | None, Query(description="a comma list")] = None,
    service_code: Annotated[str | None, Query(description="a comma list")] = None,
    start_date: Annotated[str | None, _DATE_TIME] = None,
    end_date: Annotated[str | None, _DATE_TIME] = None,
    status: Annotated[str | None, _STATUS] = None,
    locale: str | None = None,
) -> Response:
    """Requests by id (a comma list, overriding every other argument), or those made within
    the window (the last 90 days by default, at most 90 days), newest first, at most 1000.

    Listed by window, a client with an `api_key` sees every channel's petitions; without one,
    only those that came in through GeoReport (residents who used the form did not ask to be
    listed). Reading given ids needs no key: whoever holds a reference may follow it, as on
    the public status page."""
    query = parse_query(
        service_request_id=service_request_id,
        service_code=service_code,
        start_date=start_date,
        end_date=end_date,
        status=status,
        now=runtime.clock.now(),
        known_codes=catalog.categories,
    )
    rows = await find_requests(runtime.engine, query, every_channel=reader is not None)
    lang = language(locale)
    found = [views.service_request(r, catalog, lang, reader_key_id=reader) for r in rows]
    return render.respond(format, "service_requests", found)


@router.get(
    "/requests/{service_request_id}.{format}",
    response_model=list[ServiceRequest],
    responses=dict.fromkeys((400, 403, 404), _ERRORS),
)
async def one_request(
    service_request_id: str,
    format: Format,
    runtime: AppRuntime,
    catalog: CatalogDep,
    _: Jurisdiction,
    reader: ReaderKey,
    locale: str | None = None,
) -> Response:
    """One request, as a list of one (as GeoReport answers it)."""
    rows = await requests_by_ids(runtime.engine, [service_request_id])
    if not rows:
        raise UnknownServiceRequest(service_request_id)
    lang = language(locale)
    found = [views.service_request(r, catalog, lang, reader_key_id=reader) for r in rows]
    return render.respond(format, "service_requests", found)
