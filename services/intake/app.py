"""Intake's process: the resident's form and tracking page, the public API, the consumers that
keep the resident's view current, and the contact look-up notify asks for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.intake import handlers
from services.intake.api import api_router
from services.intake.catalog import load_catalog
from services.intake.models import messaging
from services.intake.rpc import register_contact_lookup
from services.intake.settings import Settings
from services.intake.web import pages_router
from shared.clock import Clock, clock_from_env
from shared.runtime import build_runtime, running
from shared.web import dead_letter_router, install_problem_handlers, ops_router, staff_dependency

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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
    register_contact_lookup(runtime.broker, runtime.engine, settings.public_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(
            runtime, migrations_dir=MIGRATIONS_DIR, migrate=settings.migrate_on_start
        ):
            yield

    app = FastAPI(
        title="Petitions intake / Tiếp nhận phản ánh",
        version="1",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.catalog = catalog
    install_problem_handlers(app)
    app.include_router(ops_router(runtime))
    app.include_router(
        dead_letter_router(
            runtime, staff_dependency(lambda: settings.secret_key.get_secret_value())
        )
    )
    app.include_router(api_router(runtime, catalog, settings.public_url))
    app.include_router(pages_router(runtime, catalog, settings.public_url))
    return app
