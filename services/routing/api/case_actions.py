"""What staff do to a case. Each answers the case as it is afterwards; who may do what is
`permissions.permissions` (403 otherwise), and the case's state must allow it (409, saying the
state in words and what to do first)."""

import uuid

from fastapi import APIRouter

from services.routing.api.links import case_links, operation_id
from services.routing.api.schemas import (
    AskIn,
    Case,
    DeclineIn,
    EscalateIn,
    NoteIn,
    ReassignIn,
    RejectIn,
    ResolveIn,
)
from services.routing.deps import ActionsDep
from shared.web import CurrentStaff, problem_responses

router = APIRouter(
    prefix="/api/v1/cases/{case_id}", tags=["staff"], generate_unique_id_function=operation_id
)

REFUSALS = {**problem_responses(401, 403, 404, 409, 422), **case_links()}
# A body that is not JSON at all is refused before it is read (400).
WITH_BODY = {**problem_responses(400, 401, 403, 404, 409, 422), **case_links()}


@router.post("/accept", responses=REFUSALS)
async def accept(case_id: uuid.UUID, staff: CurrentStaff, actions: ActionsDep) -> Case:
    """The holder acknowledges the case."""
    case, org = await actions.accept(staff, case_id=str(case_id))
    return Case.for_staff(case, org, staff)


@router.post("/notes", responses=WITH_BODY)
async def add_note(
    case_id: uuid.UUID, body: NoteIn, staff: CurrentStaff, actions: ActionsDep
) -> Case:
    """A note for whoever handles the case; its status does not change."""
    case, org = await actions.add_note(staff, case_id=str(case_id), note=body.note)
    return Case.for_staff(case, org, staff)


@router.post("/resolve", responses=WITH_BODY)
async def resolve(
    case_id: uuid.UUID, body: ResolveIn, staff: CurrentStaff, actions: ActionsDep
) -> Case:
    """Resolve with an explanation; a case still waiting to be accepted is accepted first."""
    case, org = await actions.resolve(staff, case_id=str(case_id), explanation=body.explanation)
    return Case.for_staff(case, org, staff)


@router.post("/reassign", responses=WITH_BODY)
async def reassign(
    case_id: uuid.UUID, body: ReassignIn, staff: CurrentStaff, actions: ActionsDep
) -> Case:
    """A leader (or an administrator) hands the case to someone who serves its unit or a
    unit above it; the rung follows the new holder."""
    case, org = await actions.reassign(
        staff, case_id=str(case_id), member_id=body.member_id, username=body.username
    )
    return Case.for_staff(case, org, staff)


@router.post("/decline", responses=WITH_BODY)
async def decline(
    case_id: uuid.UUID, body: DeclineIn, staff: CurrentStaff, actions: ActionsDep
) -> Case:
    """The holder hands the case back with a reason; it goes at once to whoever holds it next."""
    case, org = await actions.decline(
        staff, case_id=str(case_id), reason_code=body.reason_code, comment=body.comment
    )
    return Case.for_staff(case, org, staff)


@router.post("/ask", responses=WITH_BODY)
async def ask(case_id: uuid.UUID, body: AskIn, staff: CurrentStaff, actions: ActionsDep) -> Case:
    """Ask the resident for information; the deadline clock stops until they answer."""
    case, org = await actions.ask(staff, case_id=str(case_id), question=body.question)
    return Case.for_staff(case, org, staff)


@router.post("/escalate", responses=WITH_BODY)
async def escalate_case(
    case_id: uuid.UUID, body: EscalateIn, staff: CurrentStaff, actions: ActionsDep
) -> Case:
    """A leader moves the case one rung up (or further while nobody can take a rung)."""
    case, org = await actions.escalate(staff, case_id=str(case_id), comment=body.comment)
    return Case.for_staff(case, org, staff)


@router.post("/take-over", responses=REFUSALS)
async def take_over(case_id: uuid.UUID, staff: CurrentStaff, actions: ActionsDep) -> Case:
    """A leader takes the case on themselves, at their own rung."""
    case, org = await actions.take_over(staff, case_id=str(case_id))
    return Case.for_staff(case, org, staff)


@router.post("/reject", responses=WITH_BODY)
async def reject(
    case_id: uuid.UUID, body: RejectIn, staff: CurrentStaff, actions: ActionsDep
) -> Case:
    """Leadership (a leader of a unit above the case's, or an administrator) rejects it."""
    case, org = await actions.reject(staff, case_id=str(case_id), reason=body.reason)
    return Case.for_staff(case, org, staff)
