"""Intake's process: the resident's form and tracking page, the public API, the consumers that
keep the resident's view current, and the contact look-up notify asks for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import InterfaceError, OperationalError

from services.intake import handlers, open311
from services.intake.api import catalog as catalog_api
from services.intake.api import petitions as petitions_api
from services.intake.api import recovery as recovery_api
from services.intake.api import tracking as tracking_api
from services.intake.catalog import load_catalog
from services.intake.errors import (
    ActionNotAllowed,
    DatabaseUnavailable,
    EscalationNotOpen,
    EscalationTooSoon,
    FeedbackNotExpected,
    IdempotencyKeyErased,
    IdempotencyKeyReused,
    IntakeError,
    InvalidIdempotencyKey,
    InvalidSubmission,
    MalformedBody,
    NotAPetition,
    NotOverdue,
    TooManyRequests,
    UnknownReference,
    UnknownTrackingLink,
    UnsupportedMediaType,
)
from services.intake.models import messaging
from services.intake.open311.keys import InvalidClientName
from services.intake.rpc import register_contact_lookup
from services.intake.settings import Settings
from services.intake.throttle import PublicThrottle
from services.intake.web import form, recover, tracking, tracking_actions
from services.intake.web.pages import build_page_kit, unavailable_page
from shared.clock import Clock, clock_from_env
from shared.db import is_database_outage
from shared.logging import warn_running_open
from shared.runtime import build_runtime, running
from shared.web import install_service_edge, trip_database_breaker
from shared.webkit.pages import install_pages

ProblemHandler = Callable[[Request, Exception], Awaitable[Response]]
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Every refusal of intake's rules and the HTTP status it is answered with, in one place.
ERRORS: dict[type[Exception], int] = {
    # Any refusal not named below (a new one, say) is still a 4xx, never a 500.
    IntakeError: 400,
    MalformedBody: 400,
    InvalidIdempotencyKey: 400,
    UnknownReference: 404,
    UnknownTrackingLink: 404,
    ActionNotAllowed: 409,
    FeedbackNotExpected: 409,
    EscalationNotOpen: 409,
    NotOverdue: 409,
    IdempotencyKeyErased: 409,
    UnsupportedMediaType: 415,
    InvalidSubmission: 422,
    NotAPetition: 422,
    InvalidClientName: 422,
    IdempotencyKeyReused: 422,
    EscalationTooSoon: 429,
    TooManyRequests: 429,
    DatabaseUnavailable: 503,
}

log = structlog.get_logger(__name__)


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    catalog = load_catalog(settings.catalog_file)
    runtime = build_runtime(
        service="intake",
        settings=settings,
        database_url=settings.database_url,
        tables=messaging,
        clock=clock or clock_from_env(settings.clock_file),
    )
    handlers.register(runtime.consumers)
    register_contact_lookup(runtime.broker, runtime.engine, settings.public_url, runtime.clock.now)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warn_running_open(settings.running_open())
        async with running(
            runtime, migrations_dir=MIGRATIONS_DIR, migrate=settings.migrate_on_start
        ):
            yield

    app = FastAPI(
        title="Petitions intake / Tiếp nhận phản ánh",
        version="1",
        lifespan=lifespan,
    )
    app.state.catalog = catalog
    app.state.settings = settings
    if settings.env == "production" and settings.rate_limit and not settings.trusted_proxies:
        # Behind a reverse proxy every resident would count as the proxy's one address.
        log.warning(
            "public_rate_limit_counts_the_connecting_address",
            hint="đặt PETITIONS_TRUSTED_PROXIES nếu có reverse proxy phía trước / set "
            "PETITIONS_TRUSTED_PROXIES when a reverse proxy is in front, or every resident "
            "shares its one limit",
        )
    app.state.throttle = PublicThrottle(
        runtime.engine,
        settings.rate_limit,
        secret=settings.secret_key.get_secret_value(),
        now=runtime.clock.now,
    )
    install_service_edge(
        app, runtime, staff_secret=settings.secret_key.get_secret_value, errors=ERRORS
    )
    # Recovery first: `/…/track/recover` is not a tracking token.
    for api in (petitions_api.router, recovery_api.router, tracking_api.router, catalog_api.router):
        app.include_router(api)
    # The tracking token is in the URL: no page hands it to another site.
    install_pages(app, build_page_kit(), referrer_policy="no-referrer")
    for pages in (form.router, recover.router, tracking.router, tracking_actions.router):
        app.include_router(pages)
    open311.install(app)
    install_outage_handler(app)
    return app


def install_outage_handler(app: FastAPI) -> None:
    """A database that cannot be reached is a 503 the client may retry, in the form its route
    speaks (problem details, GeoReport errors, or a page), never a 500. A bug SQLite reports
    the same way (no such table) stays a 500, as in every service (`shared.web`)."""

    async def outage(request: Request, exc: Exception) -> Response:
        if not is_database_outage(exc):
            raise exc
        trip_database_breaker(request)
        path = request.url.path
        if path.startswith("/api/"):
            # Answered as the domain's DatabaseUnavailable is, by its handler from ERRORS.
            as_problem = cast(ProblemHandler, app.exception_handlers[DatabaseUnavailable])
            return await as_problem(request, DatabaseUnavailable())
        if path.startswith("/open311/"):
            return open311.edge.error_response(
                request, 503, "Tạm thời gián đoạn / Unavailable, please retry"
            )
        return unavailable_page(request)

    for exc_type in (OperationalError, InterfaceError, ConnectionRefusedError):
        app.add_exception_handler(exc_type, outage)
