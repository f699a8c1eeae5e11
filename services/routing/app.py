"""The routing service: assigns each petition's case, records members' actions, serves staff."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import structlog
from fastapi import FastAPI

from services.routing import models
from services.routing.accounts import Accounts
from services.routing.actions import CaseActions
from services.routing.api import ROUTERS
from services.routing.handlers import (
    CaseHandlers,
    redacting_if_erased,
    when_petition_redacted_remove_resident_text,
)
from services.routing.ladder import Ladder, load_ladder_file
from services.routing.org import (
    DEMO_ORG_FILE,
    DemoPasswordRefused,
    demo_password_accounts,
    has_units,
    import_org,
)
from services.routing.problems import PROBLEM_STATUS
from services.routing.rpc import (
    register_account_links,
    register_member_lookup,
    register_unit_lookup,
)
from services.routing.scheduled import Sweep, tune_sqlite
from services.routing.sessions import RevocationAnnouncer, Sessions
from services.routing.settings import Settings
from services.routing.signin import SignInThrottle
from services.routing.web import absence, account, case, cases, signin
from services.routing.web.pages import build_guard, build_page_kit
from shared.clock import Clock, clock_from_env
from shared.events import (
    EscalationRequested,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
)
from shared.logging import warn_running_open
from shared.migrate import upgrade_async
from shared.runtime import Runtime, build_runtime, running
from shared.web import install_service_edge
from shared.webkit.pages import install_pages

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

log = structlog.get_logger(__name__)


async def prepare_organisation(runtime: Runtime, settings: Settings) -> None:
    """Import the configured organisation file, or the demo one into an empty development
    database; production refuses to start while any account has the demo password."""
    engine = runtime.engine
    if settings.org_file is not None:
        summary = await import_org(engine, settings.org_file, env=settings.env)
        log.info("org_imported", file=str(settings.org_file), members=summary.members)
    elif settings.should_seed_demo and not await has_units(engine):
        summary = await import_org(engine, DEMO_ORG_FILE, env=settings.env)
        log.info("demo_org_seeded", members=summary.members)
    if settings.org_file is None and settings.should_seed_demo:
        warn_running_open(
            [
                *settings.running_open(),
                "tổ chức mẫu / the demo organisation: every account's password is 'demo'",
            ]
        )
    else:
        warn_running_open(settings.running_open())
    if settings.env == "production":
        accounts = await demo_password_accounts(engine)
        if accounts:
            raise DemoPasswordRefused(
                "production không chấp nhận mật khẩu mẫu 'demo' / production refuses accounts "
                f"with the demo password: {', '.join(accounts)}"
            )


def subscribe(runtime: Runtime, ladder: Ladder) -> None:
    """What routing does with intake's events, and the questions it answers on the bus."""
    handlers = CaseHandlers(clock=runtime.clock, ladder=ladder)
    runtime.consumers.add(PetitionSubmitted, handlers.when_petition_submitted_open_case_and_assign)
    add = runtime.consumers.add
    add(FeedbackGiven, redacting_if_erased(handlers.when_feedback_given_close_or_reopen))
    add(PetitionWithdrawn, redacting_if_erased(handlers.when_petition_withdrawn_close_case))
    add(ResidentAnswered, redacting_if_erased(handlers.when_resident_answered_resume_case))
    add(
        EscalationRequested,
        redacting_if_erased(handlers.when_escalation_requested_escalate_overdue_case),
    )
    add(PetitionRedacted, when_petition_redacted_remove_resident_text)
    register_member_lookup(runtime.broker, runtime.engine)
    register_unit_lookup(runtime.broker, runtime.engine)


def lifespan_of(
    runtime: Runtime, settings: Settings, sweep: Sweep, announcer: RevocationAnnouncer
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Migrate, put the organisation in place, then run the consumers, relay, sweep and the
    announcer of revoked sessions."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The organisation is in place before the consumers start, so the first petition
        # already finds its members.
        try:
            if settings.migrate_on_start:
                await upgrade_async(
                    MIGRATIONS_DIR, runtime.engine.url.render_as_string(hide_password=False)
                )
            await prepare_organisation(runtime, settings)
        except BaseException:
            await runtime.engine.dispose()
            raise
        async with running(runtime, migrations_dir=MIGRATIONS_DIR, migrate=False):
            sweep.start()
            announcer.start()
            try:
                yield
            finally:
                await announcer.stop()
                await sweep.stop()

    return lifespan


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    runtime = build_runtime(
        service="routing",
        settings=settings,
        database_url=settings.database_url,
        tables=models.messaging,
        clock=clock or clock_from_env(settings.clock_file),
    )
    ladder = load_ladder_file(settings.ladder_file)
    tune_sqlite(runtime.engine)
    sweep = Sweep(
        engine=runtime.engine,
        ladder=ladder,
        clock=runtime.clock,
        interval_s=settings.sweep_interval_s,
        batch_size=settings.sweep_batch,
        after_commit=runtime.relay.wake,
        quiet_close_days=settings.quiet_close_days,
    )
    subscribe(runtime, ladder)
    sessions = build_sessions(runtime, settings)
    app = FastAPI(
        title="Petitions routing",
        description="Phân công, xử lý và chuyển cấp phản ánh / Assignment, handling and escalation",
        version="0.1.0",
        lifespan=lifespan_of(runtime, settings, sweep, sessions.announcer),
    )
    app.state.sweep = sweep
    app.state.settings = settings
    app.state.ladder = ladder
    app.state.sessions = sessions
    install_service_edge(
        app,
        runtime,
        staff_secret=settings.secret_key.get_secret_value,
        # Routing keeps the sessions: it reads them, not the bus, to refuse a revoked one.
        session_check=sessions.is_open,
        errors=PROBLEM_STATUS,
        ready_check=lambda: sweep.running,
    )
    throttle = SignInThrottle(runtime.engine, settings.throttle_limits)
    actions = CaseActions(
        engine=runtime.engine,
        clock=runtime.clock,
        ladder=ladder,
        after_commit=runtime.relay.wake,
        wake_sweep=sweep.wake,
        throttle=throttle,
    )
    app.state.actions = actions
    app.state.accounts = build_accounts(runtime, settings, throttle, sessions)
    for router in ROUTERS:
        app.include_router(router)
    install_workspace(app, settings, sessions)
    return app


def build_accounts(
    runtime: Runtime, settings: Settings, throttle: SignInThrottle, sessions: Sessions
) -> Accounts:
    """Password changes and one-time links (sharing sign-in's throttle), and the link notify
    asks for when it emails one."""
    accounts = Accounts(
        engine=runtime.engine,
        throttle=throttle,
        announce=sessions.announcer.announce_now,
        after_commit=runtime.relay.wake,
        base_url=settings.routing_url,
    )
    register_account_links(runtime.broker, accounts)
    return accounts


def build_sessions(runtime: Runtime, settings: Settings) -> Sessions:
    """Staff sessions in routing's database, their revocations announced on the bus."""
    return Sessions(
        runtime.engine,
        secret=settings.secret_key.get_secret_value,
        announcer=RevocationAnnouncer(runtime.engine, runtime),
        access_ttl=timedelta(seconds=settings.access_token_ttl_s),
        session_ttl=timedelta(hours=settings.session_ttl_h),
    )


def install_workspace(app: FastAPI, settings: Settings, sessions: Sessions) -> None:
    """The member workspace's pages, on a session renewed as they are used."""
    app.state.guard = build_guard(settings)
    # Same-origin referrers: a signed-in POST then carries our Origin, and nothing leaks to
    # other sites; sign-in may send the browser on to another of our services.
    install_pages(
        app, build_page_kit(), referrer_policy="same-origin", form_origins=app.state.guard.origins
    )
    for pages in (signin.router, cases.router, case.router, absence.router, account.router):
        app.include_router(pages)
    app.add_middleware(
        signin.RefreshSession, sessions=sessions, secure=settings.env == "production"
    )
