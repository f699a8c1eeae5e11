"""Staff JSON API: sign-in, the cases a member may see, and the actions a holder takes.

The rules live in `services.routing.actions`, shared with the workspace pages; this module
only reads requests and turns refusals into RFC 9457 problem details.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate the `Annotated`
# dependencies, which refer to names local to `build_router`.
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.engine import RowMapping

from services.routing.actions import ActionError, CaseActions
from services.routing.cases import Organisation
from shared.auth import Staff, issue_token
from shared.events.routing import DeclineReason
from shared.web import ProblemError

T = TypeVar("T")


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=5000)


class ResolveIn(BaseModel):
    explanation: str = Field(min_length=1, max_length=5000)


class ReassignIn(BaseModel):
    member_id: str | None = None
    username: str | None = None


class DeclineIn(BaseModel):
    reason_code: DeclineReason
    comment: str | None = Field(default=None, max_length=2000)


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)


class EscalateIn(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class AbsenceIn(BaseModel):
    from_: AwareDatetime = Field(alias="from")
    until: AwareDatetime | None = None


def as_problem(exc: ActionError) -> ProblemError:
    return ProblemError(exc.status, exc.bilingual, type_=exc.type, **exc.extra)


async def answer(call: Awaitable[T]) -> T:
    """The action's result, or its refusal as problem details."""
    try:
        return await call
    except ActionError as exc:
        raise as_problem(exc) from exc


def case_json(case: RowMapping, org: Organisation) -> dict[str, Any]:
    holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
    return {
        "id": case["id"],
        "petition_id": case["petition_id"],
        "reference": case["reference"],
        "unit_id": case["unit_id"],
        "category_id": case["category_id"],
        "title": case["title"],
        "description": case["description"],
        "location": case["location"],
        "status": case["status"],
        "rung": case["rung"],
        "holder_member_id": case["holder_member_id"],
        "holder_username": holder.username if holder else None,
        "holder_name": holder.name if holder else None,
        "holder_unit_id": case["holder_unit_id"],
        "flag": case["flag"],
        "due_at": case["due_at"],
        "ack_due_at": case["ack_due_at"],
        "question_id": case["question_id"],
        "opened_at": case["opened_at"],
        "updated_at": case["updated_at"],
        "closed_at": case["closed_at"],
        "version": case["version"],
    }


def build_router(
    actions: CaseActions, current_staff: Callable[..., Staff], *, secret: Callable[[], str]
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["staff"])
    StaffDep = Annotated[Staff, Depends(current_staff)]

    async def done(call: Awaitable[tuple[RowMapping, Organisation]]) -> dict[str, Any]:
        case, org = await answer(call)
        return case_json(case, org)

    @router.post("/auth/token")
    async def sign_in(
        request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
    ) -> dict[str, str]:
        """Staff sign-in with username and password; answers a bearer token. Failures count
        against the same per-username and address limit as the sign-in page."""
        staff = await answer(
            actions.sign_in(
                username=form.username,
                password=form.password,
                client=request.client.host if request.client else "",
            )
        )
        return {"access_token": issue_token(staff, secret=secret()), "token_type": "bearer"}

    @router.get("/me")
    async def me(staff: StaffDep) -> dict[str, Any]:
        return {
            "username": staff.username,
            "member_id": staff.member_id,
            "role": staff.role,
            "unit_id": staff.unit_id,
            "name": staff.name,
            "units": list(staff.units),
        }

    @router.get("/cases")
    async def list_cases(
        staff: StaffDep,
        scope: Literal["mine", "unit"] = "mine",
        petition_id: uuid.UUID | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 200,
    ) -> list[dict[str, Any]]:
        """The caller's cases; `scope=unit` gives a leader every case of their unit and below
        (an administrator: every case)."""
        rows, org = await answer(
            actions.list_cases(
                staff,
                scope=scope,
                petition_id=str(petition_id) if petition_id else None,
                statuses=[status] if status is not None else None,
                limit=limit,
            )
        )
        return [case_json(r, org) for r in rows]

    @router.get("/cases/{case_id}")
    async def case_detail(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        view = await answer(actions.view(staff, str(case_id)))
        body = case_json(view.case, view.org)
        body["history"] = view.history
        body["notes"] = view.notes
        return body

    @router.post("/cases/{case_id}/accept")
    async def accept(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        return await done(actions.accept(staff, case_id=str(case_id)))

    @router.post("/cases/{case_id}/notes")
    async def add_note(case_id: uuid.UUID, body: NoteIn, staff: StaffDep) -> dict[str, Any]:
        return await done(actions.add_note(staff, case_id=str(case_id), note=body.note))

    @router.post("/cases/{case_id}/resolve")
    async def resolve(case_id: uuid.UUID, body: ResolveIn, staff: StaffDep) -> dict[str, Any]:
        """Resolve with an explanation; a case still waiting to be accepted is accepted first."""
        return await done(
            actions.resolve(staff, case_id=str(case_id), explanation=body.explanation)
        )

    @router.post("/cases/{case_id}/reassign")
    async def reassign(case_id: uuid.UUID, body: ReassignIn, staff: StaffDep) -> dict[str, Any]:
        """A leader (or an administrator) hands the case to someone who serves its unit or a
        unit above it; the rung follows the new holder."""
        return await done(
            actions.reassign(
                staff, case_id=str(case_id), member_id=body.member_id, username=body.username
            )
        )

    @router.post("/cases/{case_id}/decline")
    async def decline(case_id: uuid.UUID, body: DeclineIn, staff: StaffDep) -> dict[str, Any]:
        """The holder hands the case back with a reason (see `actions.CaseActions.decline`)."""
        return await done(
            actions.decline(
                staff, case_id=str(case_id), reason_code=body.reason_code, comment=body.comment
            )
        )

    @router.post("/cases/{case_id}/ask")
    async def ask(case_id: uuid.UUID, body: AskIn, staff: StaffDep) -> dict[str, Any]:
        """Ask the resident for information; the deadline clock stops until they answer."""
        return await done(actions.ask(staff, case_id=str(case_id), question=body.question))

    @router.post("/cases/{case_id}/escalate")
    async def escalate_case(
        case_id: uuid.UUID, body: EscalateIn, staff: StaffDep
    ) -> dict[str, Any]:
        """A leader moves the case one rung up (or further while nobody can take a rung)."""
        return await done(actions.escalate(staff, case_id=str(case_id), comment=body.comment))

    @router.post("/cases/{case_id}/take-over")
    async def take_over(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        """A leader takes the case on themselves, at their own rung."""
        return await done(actions.take_over(staff, case_id=str(case_id)))

    @router.post("/cases/{case_id}/reject")
    async def reject(case_id: uuid.UUID, body: RejectIn, staff: StaffDep) -> dict[str, Any]:
        """Leadership (a leader of a unit above the case's, or an administrator) rejects it."""
        return await done(actions.reject(staff, case_id=str(case_id), reason=body.reason))

    @router.post("/members/{member_id}/absence")
    async def set_absence(member_id: str, body: AbsenceIn, staff: StaffDep) -> dict[str, Any]:
        """Mark a member away: they get no new cases while away, and their open cases go to
        the leader when the absence starts. A member marks themselves; leaders of the member's
        unit or above and administrators mark anyone."""
        await answer(
            actions.set_absence(staff, member_id=member_id, from_=body.from_, until=body.until)
        )
        return {"member_id": member_id, "away_from": body.from_, "away_until": body.until}

    return router
