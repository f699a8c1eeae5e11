"""A lost tracking link asked for again by reference and contact (`services.intake.recovery`).

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

from fastapi import APIRouter, BackgroundTasks

from services.intake.api.edge import JsonRoute, operation_id, problems
from services.intake.api.schemas import Label, LinkRecoveryAccepted, LinkRecoveryRequest
from services.intake.deps import AppRuntime, ClientAddress, ThrottleDep
from services.intake.recovery import NEUTRAL_EN, NEUTRAL_VI, ask_for_link

router = APIRouter(
    prefix="/api/v1/track",
    tags=["tracking"],
    route_class=JsonRoute,
    generate_unique_id_function=operation_id,
)


@router.post(
    "/recover",
    status_code=202,
    responses={
        202: {"description": "Taken: a link goes to the contact if it is the petition's."},
        **problems(400, 413, 415, 422, 429, 503),
    },
)
async def recover_tracking_link(
    recovery: LinkRecoveryRequest,
    runtime: AppRuntime,
    throttle: ThrottleDep,
    client: ClientAddress,
    tasks: BackgroundTasks,
) -> LinkRecoveryAccepted:
    """Ask for a lost tracking link again. If the reference is a petition's and the contact is
    the email (any case) or phone (any spacing) given with it, a new link goes to that
    contact, through the usual messages to residents; the answer (202) never says whether
    anything matched. At most a few requests per reference an hour, and the public limit per
    address and contact (429 with `Retry-After`)."""
    await ask_for_link(
        reference=recovery.reference,
        contact=recovery.contact,
        client=client,
        throttle=throttle,
        runtime=runtime,
        tasks=tasks,
    )
    return LinkRecoveryAccepted(message=Label(vi=NEUTRAL_VI, en=NEUTRAL_EN))
