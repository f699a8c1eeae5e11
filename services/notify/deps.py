"""What notify's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends, Request

from services.notify.config import NotifyConfig
from services.notify.delivery import DeliveryWorker
from services.notify.directory import Directory
from services.notify.scheduled import Scheduler
from services.notify.settings import Settings
from services.notify.units import UnitCache
from shared.auth import Staff
from shared.web import AppRuntime
from shared.webkit.session import OptionalSession, SignInRequired, sign_in_location, this_page


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _config(request: Request) -> NotifyConfig:
    config: NotifyConfig = request.app.state.config
    return config


def _delivery(request: Request) -> DeliveryWorker:
    worker: DeliveryWorker = request.app.state.delivery
    return worker


def _scheduler(request: Request) -> Scheduler:
    scheduler: Scheduler = request.app.state.scheduler
    return scheduler


def _directory(request: Request) -> Directory:
    directory: Directory = request.app.state.directory
    return directory


def _unit_cache(request: Request) -> UnitCache:
    cache: UnitCache = request.app.state.unit_cache
    return cache


def _page_staff(request: Request, session: OptionalSession) -> Staff:
    """The signed-in staff member on a page; anyone else is sent to routing's sign-in page,
    which brings them back here (public URLs: behind a proxy the request's own host is not
    the one the browser used)."""
    if session is None:
        settings = _settings(request)
        raise SignInRequired(
            sign_in_location(
                f"{settings.routing_url.rstrip('/')}/signin",
                settings.notify_url.rstrip("/") + this_page(request),
            )
        )
    return session.staff


SettingsDep = Annotated[Settings, Depends(_settings)]
PageStaff = Annotated[Staff, Depends(_page_staff)]
ConfigDep = Annotated[NotifyConfig, Depends(_config)]
DeliveryDep = Annotated[DeliveryWorker, Depends(_delivery)]
SchedulerDep = Annotated[Scheduler, Depends(_scheduler)]
DirectoryDep = Annotated[Directory, Depends(_directory)]
UnitCacheDep = Annotated[UnitCache, Depends(_unit_cache)]

__all__ = [
    "AppRuntime",
    "ConfigDep",
    "DeliveryDep",
    "DirectoryDep",
    "PageStaff",
    "SchedulerDep",
    "SettingsDep",
    "UnitCacheDep",
]
