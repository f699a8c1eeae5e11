"""Staff sign-in for API clients: a short-lived access token and a refresh token per session,
sign-out, and who the token belongs to."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from services.routing.api.links import operation_id
from services.routing.api.schemas import Me, RefreshForm, Token, TokenForm
from services.routing.deps import ActionsDep, SessionsDep, client_address, user_agent
from services.routing.errors import SessionEnded
from services.routing.sessions import Issued
from shared.web import CurrentStaff, problem_responses

router = APIRouter(prefix="/api/v1", tags=["staff"], generate_unique_id_function=operation_id)


def _token(issued: Issued) -> Token:
    return Token(
        access_token=issued.access_token,
        expires_in=int(issued.access_ttl.total_seconds()),
        refresh_token=issued.refresh_token,
    )


@router.post("/auth/token", responses=problem_responses(400, 401, 413, 422, 429))
async def sign_in(
    request: Request,
    form: Annotated[TokenForm, Form()],
    actions: ActionsDep,
    sessions: SessionsDep,
) -> Token:
    """Staff sign-in with username and password: opens a session.

    Failed sign-ins count per username (from any address) and per address; past the limit the
    answer is 429 with `Retry-After`, before the password is even checked."""
    staff = await actions.sign_in(
        username=form.username,
        password=form.password,
        client=client_address(request),
        user_agent=user_agent(request),
    )
    return _token(await sessions.open(staff))


@router.post("/auth/refresh", responses=problem_responses(401, 413, 422))
async def refresh(form: Annotated[RefreshForm, Form()], sessions: SessionsDep) -> Token:
    """The session's next access token, saying who the person is now (their role and units
    as they are at this moment); 401 once the session has ended."""
    refreshed = await sessions.refresh(form.refresh_token)
    if refreshed is None:
        raise SessionEnded(
            "Phiên đăng nhập đã kết thúc, vui lòng đăng nhập lại.",
            "The session has ended, please sign in again.",
        )
    return _token(refreshed)


@router.post("/auth/signout", status_code=204, responses=problem_responses(401))
async def sign_out(staff: CurrentStaff, sessions: SessionsDep) -> Response:
    """End the caller's session: its access and refresh tokens are refused from now on, by
    every service."""
    await sessions.sign_out(staff.session_id)
    return Response(status_code=204)


@router.get("/me", responses=problem_responses(401))
async def me(staff: CurrentStaff) -> Me:
    """The signed-in person and the units whose petitions they may see."""
    return Me.of(staff)
