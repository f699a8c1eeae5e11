"""Time away: a member away gets no new cases, and their open cases go to the leader when the
absence starts."""

from fastapi import APIRouter

from services.routing.api.links import operation_id
from services.routing.api.schemas import Absence, AbsenceIn
from services.routing.deps import ActionsDep
from shared.web import CurrentStaff, problem_responses

router = APIRouter(prefix="/api/v1", tags=["staff"], generate_unique_id_function=operation_id)


@router.post("/members/{member_id}/absence", responses=problem_responses(400, 401, 403, 404, 422))
async def set_absence(
    member_id: str, body: AbsenceIn, staff: CurrentStaff, actions: ActionsDep
) -> Absence:
    """Mark a member away. A member marks themselves; leaders of the member's unit or above
    and administrators mark anyone."""
    await actions.set_absence(staff, member_id=member_id, from_=body.from_, until=body.until)
    return Absence(member_id=member_id, away_from=body.from_, away_until=body.until)
