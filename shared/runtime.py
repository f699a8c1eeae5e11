"""What every service process runs besides its own logic: database, broker, relay, consumers,
and their start and stop in the web app's lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from faststream.nats import JStream, NatsBroker
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock, SystemClock
from shared.db import create_engine
from shared.messaging import Consumers, MessagingTables, OutboxRelay
from shared.migrate import upgrade_async
from shared.nats_auth import SERVICES, STREAM_OWNER, broker_options
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
    settings.check_bus_credentials(service)
    engine = create_engine(database_url)
    broker = NatsBroker(
        settings.nats_servers,
        name=f"petitions-{service}",
        # FastStream's per-message INFO lines cost a third of a consumer's throughput.
        log_level=logging.DEBUG,
        logger=logging.getLogger(f"faststream.{service}"),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        **broker_options(service, settings),
    )
    if not settings.nats_authenticated:
        log.warning(
            "nats_bus_open",
            service=service,
            message="NATS không xác thực: ai kết nối được cũng đọc và giả mạo sự kiện / "
            "no NATS credentials: anyone who reaches the bus can read and forge events "
            "(set PETITIONS_NATS_NKEY_SEED or PETITIONS_NATS_CREDS)",
        )
    stream = petitions_stream(settings.stream_limits)
    # `_stream_ready` makes sure of the stream before the consumer starts, from its one
    # definition; FastStream's own declaration would be a second one (and is refused to
    # every service but the stream's owner: shared.nats_auth).
    stream.declare = False
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


# How long startup waits for NATS before opening the port anyway: long enough that a normal
# start is complete when the app takes requests, short enough that residents are not kept
# waiting by a bus that is down (their petitions go to the outbox meanwhile).
NATS_GRACE_S = 5.0


def owns_stream(service: str) -> bool:
    """Whether `service` creates the petitions stream; tests' own runtimes (any other name)
    connect as the operator and may too."""
    return service == STREAM_OWNER or service not in SERVICES


async def _stream_ready(runtime: Runtime) -> None:
    """The owner brings the stream to its definition; the others wait until it exists."""
    if owns_stream(runtime.service):
        await ensure_stream(runtime.broker, runtime.settings.stream_limits)
        return
    js = runtime.broker.config.connection_state.stream
    try:
        await js.stream_info(PETITIONS_STREAM)
    except NotFoundError:
        raise StreamMissingError(
            f"{PETITIONS_STREAM} not created yet (by {STREAM_OWNER})"
        ) from None


# JetStream's error code for a stream whose limits the server's storage cannot hold.
INSUFFICIENT_STORAGE = 10047


class StreamMissingError(RuntimeError):
    """The petitions stream does not exist yet; its owner creates it when it starts."""


async def _connect(runtime: Runtime) -> None:
    """Connect the broker (it retries for as long as NATS is unreachable), make sure of the
    stream, start the relay and the consumer, and bring the consumer up to date: the service
    is then fully started."""
    await runtime.broker.connect()
    pause = 0.5
    while True:
        try:
            await _stream_ready(runtime)
            break
        except Exception as exc:
            # JetStream not ready yet (a cluster electing its leader, the owner not started): wait.
            hint = None
            if getattr(exc, "err_code", None) == INSUFFICIENT_STORAGE:
                hint = (
                    "PETITIONS_STREAM_MAX_BYTES lớn hơn dung lượng trống của kho NATS / is more "
                    "than the NATS store has free: lower it or give the store more space"
                )
            log.warning(
                "stream_not_ready", error=f"{type(exc).__name__}: {exc}", retry_s=pause, hint=hint
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)
    await runtime.broker.start()
    runtime.relay.start()
    try:
        await runtime.consumers.reconcile()
    except Exception as exc:
        # The consumer works as it is; only its server-side delivery limit stays the old one.
        log.error("consumer_reconcile_failed", error=f"{type(exc).__name__}: {exc}")
    runtime.started = True
    log.info("service_started", nats=runtime.settings.nats_url)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("nats_connect_failed", error=f"{type(error).__name__}: {error}")


@asynccontextmanager
async def running(
    runtime: Runtime, *, migrations_dir: Path | None, migrate: bool
) -> AsyncIterator[Runtime]:
    """Migrate (embedded mode), connect the broker, start consumers and the relay; undo on exit.

    With NATS unreachable the service starts anyway after `NATS_GRACE_S` and connects in the
    background: intake takes petitions into its outbox, every service serves what its own
    database holds, and `/readyz` says "not ready" until the bus is back.
    """
    if migrate and migrations_dir is not None:
        await upgrade_async(
            migrations_dir, str(runtime.engine.url.render_as_string(hide_password=False))
        )
    connecting = asyncio.create_task(_connect(runtime), name=f"{runtime.service}-connect")
    await asyncio.wait({connecting}, timeout=NATS_GRACE_S)
    if not connecting.done():
        log.warning("nats_unreachable_starting_without_it", nats=runtime.settings.nats_url)
        connecting.add_done_callback(_log_failure)
    elif (error := connecting.exception()) is not None:
        raise error
    try:
        yield runtime
    finally:
        runtime.started = False
        # Repeated: the broker's connect can swallow one cancellation and go on retrying.
        while not connecting.done():
            connecting.cancel()
            await asyncio.wait({connecting}, timeout=1.0)
        if not connecting.cancelled():
            connecting.exception()  # retrieved: it was logged when it happened
        await runtime.relay.stop()
        await runtime.broker.stop()
        await runtime.engine.dispose()
        log.info("service_stopped")
