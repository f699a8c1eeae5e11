"""What routing's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends, Request

from services.routing.accounts import Accounts
from services.routing.actions import CaseActions
from services.routing.ladder import Ladder
from services.routing.scheduled import Sweep
from services.routing.sessions import Sessions
from services.routing.settings import Settings
from shared.web import AppRuntime, from_state
from shared.webkit.forms import Guard
from shared.webkit.session import (
    OptionalSession,
    SignInRequired,
    StaffSession,
    sign_in_location,
    this_page,
)


def _signed_in(request: Request, session: OptionalSession) -> StaffSession:
    """A workspace page is for signed-in staff: anyone else signs in first and comes back."""
    if session is None:
        raise SignInRequired(sign_in_location("/signin", this_page(request)))
    return session


def client_address(request: Request) -> str:
    """The client as the server saw it: the TCP peer, or the address a trusted proxy gave in
    `X-Forwarded-For` (uvicorn applies `PETITIONS_TRUSTED_PROXIES`; no other header counts)."""
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    """The client's User-Agent, cut to what the sign-in history keeps."""
    return request.headers.get("user-agent", "")[:200]


ActionsDep = Annotated[CaseActions, Depends(from_state("actions"))]
SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
LadderDep = Annotated[Ladder, Depends(from_state("ladder"))]
SweepDep = Annotated[Sweep, Depends(from_state("sweep"))]
GuardDep = Annotated[Guard, Depends(from_state("guard"))]
AccountsDep = Annotated[Accounts, Depends(from_state("accounts"))]
SessionsDep = Annotated[Sessions, Depends(from_state("sessions"))]
SignedIn = Annotated[StaffSession, Depends(_signed_in)]

__all__ = [
    "AccountsDep",
    "ActionsDep",
    "AppRuntime",
    "GuardDep",
    "LadderDep",
    "OptionalSession",
    "SessionsDep",
    "SettingsDep",
    "SignedIn",
    "SweepDep",
    "client_address",
    "user_agent",
]
