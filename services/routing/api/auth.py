"""Staff sign-in for API clients, and who the token belongs to."""

from typing import Annotated

from fastapi import APIRouter, Form, Request

from services.routing.api.links import operation_id
from services.routing.api.schemas import Me, Token, TokenForm
from services.routing.deps import ActionsDep, SettingsDep
from shared.auth import issue_token
from shared.web import CurrentStaff, problem_responses

router = APIRouter(prefix="/api/v1", tags=["staff"], generate_unique_id_function=operation_id)


@router.post("/auth/token", responses=problem_responses(400, 401, 422, 429))
async def sign_in(
    request: Request,
    form: Annotated[TokenForm, Form()],
    actions: ActionsDep,
    settings: SettingsDep,
) -> Token:
    """Staff sign-in with username and password; answers a bearer token. Failures count
    against the same per-username and address limit as the sign-in page."""
    staff = await actions.sign_in(
        username=form.username,
        password=form.password,
        client=request.client.host if request.client else "",
    )
    return Token(access_token=issue_token(staff, secret=settings.secret_key.get_secret_value()))


@router.get("/me", responses=problem_responses(401))
async def me(staff: CurrentStaff) -> Me:
    """The signed-in person and the units whose petitions they may see."""
    return Me.of(staff)
