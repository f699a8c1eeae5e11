"""What routing's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends, Request

from services.routing.actions import CaseActions
from services.routing.ladder import Ladder
from services.routing.scheduled import Sweep
from services.routing.settings import Settings
from shared.web import AppRuntime
from shared.webkit.forms import Guard
from shared.webkit.session import (
    OptionalSession,
    SignInRequired,
    StaffSession,
    sign_in_location,
    this_page,
)


def _actions(request: Request) -> CaseActions:
    actions: CaseActions = request.app.state.actions
    return actions


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _ladder(request: Request) -> Ladder:
    ladder: Ladder = request.app.state.ladder
    return ladder


def _sweep(request: Request) -> Sweep:
    sweep: Sweep = request.app.state.sweep
    return sweep


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


def _signed_in(request: Request, session: OptionalSession) -> StaffSession:
    """A workspace page is for signed-in staff: anyone else signs in first and comes back."""
    if session is None:
        raise SignInRequired(sign_in_location("/signin", this_page(request)))
    return session


ActionsDep = Annotated[CaseActions, Depends(_actions)]
SettingsDep = Annotated[Settings, Depends(_settings)]
LadderDep = Annotated[Ladder, Depends(_ladder)]
SweepDep = Annotated[Sweep, Depends(_sweep)]
GuardDep = Annotated[Guard, Depends(_guard)]
SignedIn = Annotated[StaffSession, Depends(_signed_in)]

__all__ = [
    "ActionsDep",
    "AppRuntime",
    "GuardDep",
    "LadderDep",
    "OptionalSession",
    "SettingsDep",
    "SignedIn",
    "SweepDep",
]
