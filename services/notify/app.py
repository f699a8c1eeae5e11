"""notify's web app: follows every petition event, keeps timelines, delivers notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from shared.clock import Clock
from shared.runtime import build_runtime, running
from shared.web import dead_letter_router, install_problem_handlers, ops_router, staff_dependency

from .api import api_router
from .channels import EmailChannel, MailboxChannel, SmtpChannel, template_environment
from .delivery import DeliveryWorker
from .handlers import register_handlers
from .models import tables
from .settings import Settings
from .web import pages_router

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def email_channel(settings: Settings) -> EmailChannel:
    if settings.smtp_host is None:
        return MailboxChannel(settings.mailbox_dir)
    return SmtpChannel(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        timeout_s=settings.smtp_timeout_s,
    )


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    runtime = build_runtime(
        service="notify",
        settings=settings,
        database_url=settings.database_url,
        tables=tables,
        clock=clock,
    )
    worker = DeliveryWorker(
        engine=runtime.engine,
        broker=runtime.broker,
        settings=settings,
        clock=runtime.clock,
        channel=email_channel(settings),
        templates=template_environment(),
    )
    register_handlers(runtime)
    runtime.consumers.also_after_commit(worker.wake)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with running(
            runtime, migrations_dir=MIGRATIONS_DIR, migrate=settings.migrate_on_start
        ):
            worker.start()
            try:
                yield
            finally:
                await worker.stop()

    app = FastAPI(
        title="Petitions notify",
        description="Dòng thời gian, thông báo / Timelines and notifications",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.delivery = worker
    install_problem_handlers(app)
    current_staff = staff_dependency(settings.secret_key.get_secret_value)
    app.include_router(ops_router(runtime, extra_checks=lambda: worker.running))
    app.include_router(dead_letter_router(runtime, current_staff))
    app.include_router(
        api_router(
            engine=runtime.engine,
            clock=runtime.clock,
            current_staff=current_staff,
            wake_delivery=worker.wake,
        )
    )
    app.include_router(pages_router(engine=runtime.engine, settings=settings))
    return app
