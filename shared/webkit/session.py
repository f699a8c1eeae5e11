"""The signed-in staff member on a page, read by `shared.web.current_staff` like every API
route: the pages only decide what a missing session means (a sign-in page, not a 401)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Cookie, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import SESSION_COOKIE, Staff
from shared.web import current_staff

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class StaffSession:
    """Who is signed in, and what their CSRF tokens derive from (the session id)."""

    staff: Staff
    token: str


async def staff_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> StaffSession | None:
    """The session of a signed-in person, or None (absent, expired or forged)."""
    try:
        staff = await current_staff(request, credentials, session)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        return None
    # CSRF tokens derive from the session, not from the access token: a form stays valid
    # when its page's access token is refreshed while it is being filled in.
    return StaffSession(staff=staff, token=staff.session_id)


OptionalSession = Annotated[StaffSession | None, Depends(staff_session)]


class SignInRequired(Exception):
    """A page asked for without a valid session: the browser goes to the sign-in page at
    `location`, which brings it back."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def this_page(request: Request) -> str:
    """The path and query of the request, as a `next=` to come back to."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def sign_in_location(signin_url: str, next_url: str) -> str:
    return f"{signin_url}?next={quote(next_url, safe='')}"
