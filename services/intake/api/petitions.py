"""Petitions: submit one, and look up its public status by reference.

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from services.intake import store
from services.intake.api.edge import JsonRoute, operation_id, problems
from services.intake.api.schemas import PetitionSubmission, PublicView, SubmissionReceipt
from services.intake.deps import AppRuntime, CatalogDep, ClientAddress, SettingsDep, ThrottleDep
from services.intake.errors import DatabaseUnavailable, InvalidIdempotencyKey, UnknownReference
from services.intake.kinds import refuse_other_kinds
from services.intake.petitions import parse_reference, validate_submission
from shared.db import is_database_outage

router = APIRouter(
    prefix="/api/v1",
    tags=["petitions"],
    route_class=JsonRoute,
    generate_unique_id_function=operation_id,
)

# Printable ASCII without spaces, as clients generate them (UUIDs, random strings).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,128}$"
_IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes retries safe: the same key with the same petition within 24 hours "
        "returns the first petition again.",
        # Documented here, checked in the route: a malformed key is a 400, not a 422.
        json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]

_FROM_RECEIPT = "$response.body#/tracking_token"
# Where a client goes from a receipt: the operations of `tracking.py`, and the public status.
SUBMITTED_LINKS: dict[str, Any] = {
    "PublicStatus": {
        "operationId": "petition_status",
        "parameters": {"reference": "$response.body#/reference"},
    },
    **{
        name: {"operationId": target, "parameters": {"token": _FROM_RECEIPT}}
        for name, target in (
            ("TrackingView", "tracking_view"),
            ("GiveFeedback", "give_feedback"),
            ("Withdraw", "withdraw_petition"),
            ("AnswerQuestion", "answer_question"),
            ("RequestEscalation", "request_escalation"),
            ("StopUpdates", "stop_updates"),
            ("EraseContact", "erase_contact"),
        )
    },
}


async def not_a_petition(request: Request) -> None:
    """A complaint or a denunciation is answered with where to file it, whatever else the body
    holds (before the body is checked as a petition: it will not be one)."""
    body = await request.json()
    if isinstance(body, dict) and isinstance(body.get("kind"), str):
        refuse_other_kinds(body["kind"])


@router.post(
    "/petitions",
    status_code=201,
    dependencies=[Depends(not_a_petition)],
    responses={
        201: {
            "description": "Stored (or, with a replayed `Idempotency-Key`, stored before).",
            "headers": {
                "Location": {
                    "description": "The petition's public status.",
                    "required": True,
                    "schema": {"type": "string"},
                },
                "Idempotent-Replayed": {
                    "description": "`true` when this is the petition an earlier request "
                    "with the same key created.",
                    "schema": {"type": "string", "enum": ["true"]},
                },
            },
            "links": SUBMITTED_LINKS,
        },
        **problems(400, 409, 413, 415, 422, 429, 503),
    },
)
async def submit_petition(
    petition: PetitionSubmission,
    response: Response,
    runtime: AppRuntime,
    catalog: CatalogDep,
    settings: SettingsDep,
    throttle: ThrottleDep,
    client: ClientAddress,
    idempotency_key: IdempotencyKey = None,
) -> SubmissionReceipt:
    """Submit a petition. Nothing is stored unless every field is valid and consent is given.

    A `kind` other than `petition` (a complaint about an administrative decision, a
    denunciation) is a 422 problem whose `guidance` says, in Vietnamese and English, where to
    file it instead. Too many petitions from one address, or with one contact, within the
    window of `PETITIONS_PUBLIC_RATE_LIMIT`: 429 with `Retry-After`.

    An `Idempotency-Key` header makes retries safe: the same key with the same petition within
    24 hours returns the first petition (201 again, `Idempotent-Replayed: true`); the same key
    with another petition is a 422 problem.
    """
    if idempotency_key is not None and not _IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise InvalidIdempotencyKey
    submission = validate_submission(petition.model_dump(exclude={"kind"}), catalog)
    try:
        await throttle.admit_submission(client, submission.email, submission.phone)
        receipt = await store.submit_petition(
            runtime.engine,
            submission=submission,
            now=runtime.clock.now(),
            public_url=settings.public_url,
            idempotency_key=f"api:{idempotency_key}" if idempotency_key is not None else None,
        )
    except Exception as exc:
        if is_database_outage(exc):
            raise DatabaseUnavailable from exc
        raise
    runtime.relay.wake()
    response.headers["Location"] = f"/api/v1/petitions/{receipt.reference}"
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return SubmissionReceipt(
        petition_id=receipt.petition_id,
        reference=receipt.reference,
        tracking_token=receipt.tracking_token,
        tracking_url=receipt.tracking_url,
        status=receipt.status,
    )


@router.get("/petitions/{reference}", responses=problems(404, 503))
async def petition_status(reference: str, runtime: AppRuntime, catalog: CatalogDep) -> PublicView:
    """A petition's public status: anyone with the reference may see it (no content, no
    contact). The reference is read as people type it: any case, spaces, O for 0."""
    canonical = parse_reference(reference)
    row = await store.petition_by_reference(runtime.engine, canonical) if canonical else None
    if row is None:
        raise UnknownReference
    return PublicView.of(row, catalog)
