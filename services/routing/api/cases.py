"""The cases a person may see: their own, their unit's (leaders), one with its history."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.routing.api.links import case_links, operation_id
from services.routing.api.schemas import Case, CaseDetail
from services.routing.deps import ActionsDep
from services.routing.lifecycle import Status
from shared.web import CurrentStaff, problem_responses

router = APIRouter(prefix="/api/v1", tags=["staff"], generate_unique_id_function=operation_id)


@router.get("/cases", responses={**problem_responses(401, 403, 422), **case_links("/0/id")})
async def list_cases(
    staff: CurrentStaff,
    actions: ActionsDep,
    scope: Literal["mine", "unit"] = "mine",
    petition_id: uuid.UUID | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[Case]:
    """The caller's cases, newest first; `scope=unit` gives a leader every case of their unit
    and below (an administrator: every case)."""
    rows, org = await actions.list_cases(
        staff,
        scope=scope,
        petition_id=str(petition_id) if petition_id else None,
        statuses=[status] if status is not None else None,
        limit=limit,
    )
    return [Case.for_staff(row, org, staff) for row in rows]


@router.get("/cases/{case_id}", responses={**problem_responses(401, 404, 422), **case_links()})
async def case_detail(case_id: uuid.UUID, staff: CurrentStaff, actions: ActionsDep) -> CaseDetail:
    """A case the caller holds, held, or leads, with its history, notes and what they may do."""
    return CaseDetail.of_view(await actions.view(staff, str(case_id)))
