"""What every service process runs besides its own logic: database, broker, relay, consumers,
and their start and stop in the web app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from faststream.nats import JStream, NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock, SystemClock
from shared.db import create_engine
from shared.messaging import Consumers, MessagingTables, OutboxRelay
from shared.migrate import upgrade_async
from shared.settings import CommonSettings
from shared.streams import PETITIONS_STREAM, ensure_stream, petitions_stream

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """The moving parts of one service process, built from settings, never at import time."""

    service: str
    settings: CommonSettings
    engine: AsyncEngine
    broker: NatsBroker
    stream: JStream
    tables: MessagingTables
    relay: OutboxRelay
    consumers: Consumers
    clock: Clock
    started: bool = False
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def build_runtime(
    *,
    service: str,
    settings: CommonSettings,
    database_url: str,
    tables: MessagingTables,
    clock: Clock | None = None,
) -> Runtime:
    engine = create_engine(database_url)
    broker = NatsBroker(
        settings.nats_servers,
        name=f"petitions-{service}",
        # FastStream's per-message INFO lines cost a third of a consumer's throughput.
        log_level=logging.DEBUG,
        logger=logging.getLogger(f"faststream.{service}"),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
    )
    stream = petitions_stream(replicas=settings.stream_replicas)
    relay = OutboxRelay(engine=engine, outbox=tables.outbox, broker=broker, stream=PETITIONS_STREAM)
    consumers = Consumers(
        service=service,
        broker=broker,
        stream=stream,
        engine=engine,
        tables=tables,
        max_deliver=settings.max_deliver,
        after_commit=relay.wake,
    )
    return Runtime(
        service=service,
        settings=settings,
        engine=engine,
        broker=broker,
        stream=stream,
        tables=tables,
        relay=relay,
        consumers=consumers,
        clock=clock or SystemClock(),
    )


@asynccontextmanager
async def running(
    runtime: Runtime, *, migrations_dir: Path | None, migrate: bool
) -> AsyncIterator[Runtime]:
    """Migrate (embedded mode), connect the broker, start consumers and the relay; undo on exit."""
    if migrate and migrations_dir is not None:
        await upgrade_async(
            migrations_dir, str(runtime.engine.url.render_as_string(hide_password=False))
        )
    await runtime.broker.start()
    await ensure_stream(runtime.broker, replicas=runtime.settings.stream_replicas)
    await runtime.consumers.reconcile()
    runtime.relay.start()
    runtime.started = True
    log.info("service_started", nats=runtime.settings.nats_url)
    try:
        yield runtime
    finally:
        runtime.started = False
        await runtime.relay.stop()
        await runtime.broker.stop()
        await runtime.engine.dispose()
        log.info("service_stopped")
