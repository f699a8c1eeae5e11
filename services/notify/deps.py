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
from shared.web import AppRuntime, from_state
from shared.webkit.session import OptionalSession, SignInRequired, sign_in_location, this_page

SettingsDep = Annotated[Settings, Depends(from_state("settings"))]


def _page_staff(request: Request, session: OptionalSession, settings: SettingsDep) -> Staff:
    """The signed-in staff member on a page; anyone else is sent to routing's sign-in page,
    which brings them back here (public URLs: behind a proxy the request's own host is not
    the one the browser used)."""
    if session is None:
        raise SignInRequired(
            sign_in_location(
                f"{settings.routing_url.rstrip('/')}/signin",
                settings.notify_url.rstrip("/") + this_page(request),
            )
        )
    return session.staff


PageStaff = Annotated[Staff, Depends(_page_staff)]
ConfigDep = Annotated[NotifyConfig, Depends(from_state("config"))]
DeliveryDep = Annotated[DeliveryWorker, Depends(from_state("delivery"))]
SchedulerDep = Annotated[Scheduler, Depends(from_state("scheduler"))]
DirectoryDep = Annotated[Directory, Depends(from_state("directory"))]
UnitCacheDep = Annotated[UnitCache, Depends(from_state("unit_cache"))]

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
