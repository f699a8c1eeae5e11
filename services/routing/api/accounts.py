"""Accounts: a person changes their own password and reads their sign-in history;
administrators (and leaders, for the members of their unit and the units below it) read
anyone's history and send a one-time link to set a password."""

from fastapi import APIRouter, Request

from services.routing.accounts import member_in_reach, signin_history
from services.routing.api.links import operation_id
from services.routing.api.schemas import (
    AccountLink,
    AccountLinkIn,
    PasswordChange,
    PasswordChanged,
    SignInAttempt,
    SignInHistory,
)
from services.routing.deps import AccountsDep, client_address, user_agent
from shared.web import CurrentStaff, problem_responses

router = APIRouter(prefix="/api/v1", tags=["accounts"], generate_unique_id_function=operation_id)


@router.post("/me/password", responses=problem_responses(400, 401, 403, 413, 422, 429))
async def change_password(
    request: Request, body: PasswordChange, staff: CurrentStaff, accounts: AccountsDep
) -> PasswordChanged:
    """Change one's own password. The current one is checked (wrong: 403; it counts against
    the sign-in limits, 429 past them); the new one must pass the policy (422 saying why, in
    Vietnamese and English). The person's other sessions end at once; this one goes on."""
    ended = await accounts.change_password(
        staff,
        current=body.current_password,
        new=body.new_password,
        client=client_address(request),
        user_agent=user_agent(request),
    )
    return PasswordChanged(sessions_ended=ended)


async def _history(accounts: AccountsDep, member_id: str) -> SignInHistory:
    rows = await signin_history(accounts.engine, member_id)
    return SignInHistory(
        member_id=member_id, attempts=[SignInAttempt.model_validate(dict(r)) for r in rows]
    )


@router.get("/me/signins", responses=problem_responses(401))
async def my_signins(staff: CurrentStaff, accounts: AccountsDep) -> SignInHistory:
    """The signed-in person's sign-in attempts of the last 90 days, newest first."""
    return await _history(accounts, staff.member_id or "")


@router.get("/members/{member_id}/signins", responses=problem_responses(401, 403, 404))
async def member_signins(
    member_id: str, staff: CurrentStaff, accounts: AccountsDep
) -> SignInHistory:
    """A member's sign-in attempts: their own, or anyone's for an administrator (a leader,
    for the members of their unit and below)."""
    if member_id != staff.member_id:
        await member_in_reach(accounts.engine, staff, member_id)
    return await _history(accounts, member_id)


@router.post(
    "/admin/members/{member_id}/password-link",
    status_code=202,
    responses=problem_responses(400, 401, 403, 404, 413, 422),
)
async def send_password_link(
    member_id: str, staff: CurrentStaff, accounts: AccountsDep, body: AccountLinkIn | None = None
) -> AccountLink:
    """Email the member a one-time link to set their password (reset or invitation), valid
    24 hours and once; an earlier link of theirs stops working. Administrators, and leaders
    for the members of their unit and the units below it (not administrators)."""
    row = await accounts.request_link(
        staff, member_id=member_id, kind=(body or AccountLinkIn()).kind
    )
    return AccountLink(
        link_id=row["id"],
        member_id=row["member_id"],
        kind=row["kind"],
        expires_at=row["expires_at"],
    )
