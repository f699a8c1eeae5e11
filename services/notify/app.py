"""notify's web app: follows every petition event, keeps timelines and resolution statistics,
delivers notifications on each person's channels, and sends meeting digests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from shared.clock import Clock
from shared.logging import warn_running_open
from shared.runtime import Runtime, build_runtime, running
from shared.web import install_service_edge
from shared.webkit.pages import install_pages

from .accounts import register_account_handlers
from .api import ROUTERS
from .channels import (
    EMAIL_CHANNEL,
    Channel,
    EmailChannel,
    MailboxTransport,
    MailTransport,
    SmtpTransport,
    WebhookChannel,
    template_environment,
)
from .config import NotifyConfig, load_config, refuse_unsafe
from .delivery import DeliveryWorker
from .directory import Directory
from .errors import (
    DigestNotFound,
    InvalidDateRange,
    MemberNotVisible,
    MessageNotFound,
    NotAMember,
    NotificationNotFound,
    NotificationNotRetryable,
    PetitionNotFound,
    RoutingUnavailable,
    UnitNotVisible,
    UnitTreeUnavailable,
)
from .handlers import register_handlers
from .models import tables
from .queueing import Queueing
from .scheduled import Scheduler
from .settings import Settings
from .stats import ResolutionTracker
from .units import UnitCache
from .web import digest, mailbox, overview, petition
from .web.pages import build_page_kit, mailbox_exists

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# notify's refusals and the HTTP status each is answered with: the one place they are mapped.
ERRORS: dict[type[Exception], int] = {
    PetitionNotFound: 404,
    NotificationNotFound: 404,
    MessageNotFound: 404,
    DigestNotFound: 404,
    NotAMember: 403,
    UnitNotVisible: 403,
    MemberNotVisible: 403,
    NotificationNotRetryable: 409,
    InvalidDateRange: 422,
    UnitTreeUnavailable: 503,
    RoutingUnavailable: 503,
}


def mail_transport(settings: Settings) -> MailTransport:
    if settings.smtp_host is None:
        return MailboxTransport(settings.mailbox_dir)
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        timeout_s=settings.smtp_timeout_s,
    )


def build_channels(settings: Settings, config: NotifyConfig, clock: Clock) -> dict[str, Channel]:
    """Email always; one webhook channel per configured endpoint (the in-app inbox is written
    when the notification is queued)."""
    channels: dict[str, Channel] = {
        EMAIL_CHANNEL: EmailChannel(
            mail_transport(settings), sender=settings.mail_from, clock_now=clock.now
        )
    }
    secret = settings.webhook_secret.get_secret_value()
    for name, hook in config.webhooks.items():
        channels[name] = WebhookChannel(
            name=name,
            url=hook.url,
            secret=secret,
            needs_phone=hook.needs_phone,
            timeout_s=hook.timeout_s,
        )
    return channels


@dataclass(frozen=True)
class Parts:
    """What one notify app is made of, built by `build_parts` and held by the app."""

    runtime: Runtime
    config: NotifyConfig
    directory: Directory
    unit_cache: UnitCache
    worker: DeliveryWorker
    scheduler: Scheduler


def effective_config(settings: Settings, config: NotifyConfig | None) -> NotifyConfig:
    """The channels file (or `config`), with the batching window the environment may set, and
    refused when unsafe for production."""
    config = config or load_config(settings.channels_file)
    if settings.batch_window_minutes is not None:
        batching = config.batching.model_copy(
            update={"window_minutes": settings.batch_window_minutes}
        )
        config = config.model_copy(update={"batching": batching})
    refuse_unsafe(
        config,
        production=settings.env == "production",
        weak_webhook_secret=settings.webhook_secret_is_weak,
    )
    return config


def build_parts(settings: Settings, config: NotifyConfig, clock: Clock | None) -> Parts:
    """The runtime, the consumers and their handlers, the delivery worker and the scheduler:
    everything stateful, made here and nowhere at import."""
    runtime = build_runtime(
        service="notify",
        settings=settings,
        database_url=settings.database_url,
        tables=tables,
        clock=clock,
    )
    queueing = Queueing(
        config=config,
        templates=template_environment(),
        clock=runtime.clock,
        routing_url=settings.routing_url,
    )
    directory = Directory(runtime.broker, timeout_s=settings.contact_lookup_timeout_s)
    channels = build_channels(settings, config, runtime.clock)
    worker = DeliveryWorker(
        engine=runtime.engine,
        directory=directory,
        settings=settings,
        queueing=queueing,
        channels=channels,
    )
    scheduler = Scheduler(
        engine=runtime.engine,
        directory=directory,
        queueing=queueing,
        public_url=settings.notify_url,
        poll_s=settings.schedule_poll_s,
        after_commit=worker.wake,
    )
    register_handlers(runtime, queueing, ResolutionTracker(zone=config.zone))
    register_account_handlers(runtime, directory, queueing.templates, channels[EMAIL_CHANNEL])
    runtime.consumers.also_after_commit(worker.wake)
    return Parts(runtime, config, directory, UnitCache(directory), worker, scheduler)


def running_open(settings: Settings) -> list[str]:
    """The demo secret and, without SMTP, the demo mailbox (production refuses both)."""
    found = settings.running_open()
    if mailbox_exists(settings):
        found.append(
            f"hộp thư thử nghiệm / the demo mailbox: {settings.notify_url}/mail shows every "
            "message, residents' addresses and tracking links included, to anyone"
        )
    return found


def create_app(
    settings: Settings, *, clock: Clock | None = None, config: NotifyConfig | None = None
) -> FastAPI:
    """`config` defaults to the channels file from settings (raises `ChannelsFileError`)."""
    parts = build_parts(settings, effective_config(settings, config), clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warn_running_open(running_open(settings))
        async with running(
            parts.runtime, migrations_dir=MIGRATIONS_DIR, migrate=settings.migrate_on_start
        ):
            parts.worker.start()
            parts.scheduler.start()
            try:
                yield
            finally:
                await parts.scheduler.stop()
                await parts.worker.stop()

    app = FastAPI(
        title="Petitions notify",
        description="Dòng thời gian, thông báo, thống kê / Timelines, notifications, statistics",
        lifespan=lifespan,
    )
    app.state.delivery = parts.worker
    app.state.scheduler = parts.scheduler
    app.state.config = parts.config
    app.state.settings = settings
    app.state.directory = parts.directory
    app.state.unit_cache = parts.unit_cache
    install_service_edge(
        app,
        parts.runtime,
        staff_secret=settings.secret_key.get_secret_value,
        errors=ERRORS,
        ready_check=lambda: parts.worker.running and parts.scheduler.running,
    )
    for router in ROUTERS:
        app.include_router(router)
    install_pages(app, build_page_kit(), referrer_policy="same-origin")
    for pages in (overview.router, petition.router, digest.router, mailbox.router):
        app.include_router(pages)
    return app
