"""notify's staff JSON API, one module per resource: timelines, the delivery log, the in-app
inbox, statistics and meeting digests. `create_app` includes `ROUTERS`."""

from __future__ import annotations

from fastapi import APIRouter

from . import digests, inbox, notifications, statistics, timelines

ROUTERS: tuple[APIRouter, ...] = (
    timelines.router,
    notifications.router,
    inbox.router,
    statistics.router,
    digests.router,
)
