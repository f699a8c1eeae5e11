"""What routing's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends, Request

from services.routing.actions import CaseActions
from services.routing.ladder import Ladder
from services.routing.scheduled import Sweep
from services.routing.settings import Settings
from shared.web import AppRuntime


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


ActionsDep = Annotated[CaseActions, Depends(_actions)]
SettingsDep = Annotated[Settings, Depends(_settings)]
LadderDep = Annotated[Ladder, Depends(_ladder)]
SweepDep = Annotated[Sweep, Depends(_sweep)]

__all__ = ["ActionsDep", "AppRuntime", "LadderDep", "SettingsDep", "SweepDep"]
