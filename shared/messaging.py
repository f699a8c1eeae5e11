"""Delivery rules in one place: the transactional outbox and its relay, the inbox, the consumer
policy and the dead-letter record. Every service uses these; none re-implements them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import UtcDateTime, is_sqlite, utcnow
from shared.events import Event

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=Event)

# Seconds to wait before each redelivery of a message whose handler failed.
DEFAULT_BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table
    dead_letters: Table


def messaging_tables(metadata: MetaData) -> MessagingTables:
    """The outbox, inbox and dead-letter tables, added to a service's own metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text, nullable=True),
        Index(
            "ix_outbox_unpublished",
            "id",
            sqlite_where=Column("published_at").is_(None),
            postgresql_where=Column("published_at").is_(None),
        ),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("handled_at", UtcDateTime, nullable=False),
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("consumer", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("event_id", String(36), nullable=True),
        Column("payload", Text, nullable=False),
        Column("error", Text, nullable=False),
        Column("deliveries", Integer, nullable=False),
        Column("failed_at", UtcDateTime, nullable=False),
        Column("retried_at", UtcDateTime, nullable=True),
    )
    return MessagingTables(outbox=outbox, inbox=inbox, dead_letters=dead_letters)


async def add_to_outbox(conn: AsyncConnection, outbox: Table, *events: Event) -> None:
    """Record events to publish, in the caller's transaction: they exist if and only if the change does."""
    if not events:
        return
    now = utcnow()
    await conn.execute(
        insert(outbox),
        [
            {
                "event_id": str(e.event_id),
                "subject": e.subject,
                "payload": e.model_dump_json(),
                "created_at": now,
                "attempts": 0,
            }
            for e in events
        ],
    )


class OutboxRelay:
    """Publishes outbox rows to JetStream in order and marks each sent only after its PubAck.

    The event id travels as `Nats-Msg-Id`, so a row published twice (a crash between the PubAck
    and the update) is dropped by the stream. On PostgreSQL several replicas share the work with
    `FOR UPDATE SKIP LOCKED`; on SQLite a service runs one process.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        broker: NatsBroker,
        stream: str,
        batch_size: int = 200,
        idle_poll_s: float = 0.5,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._broker = broker
        self._stream = stream
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._publish_timeout_s = publish_timeout_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published_total = 0

    def wake(self) -> None:
        """Tell the relay there is something new, so it does not wait for its next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                published = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox_relay_failed")
                published = 0
                await asyncio.sleep(1.0)
            if published < self._batch_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were confirmed."""
        o = self._outbox
        query = (
            select(o.c.id, o.c.event_id, o.c.subject, o.c.payload)
            .where(o.c.published_at.is_(None))
            .order_by(o.c.id)
            .limit(self._batch_size)
        )
        if is_sqlite(self._engine):
            # One writer: read without holding the write lock while waiting for PubAcks.
            async with self._engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            if not rows:
                return 0
            done, failed = await self._publish(rows)
            async with self._engine.begin() as conn:
                await self._mark(conn, done, failed)
            return len(done)
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
            if not rows:
                return 0
            done, failed = await self._publish(rows)
            await self._mark(conn, done, failed)
        return len(done)

    async def _publish(self, rows: Sequence[Any]) -> tuple[list[int], dict[int, str]]:
        async def one(row: Any) -> None:
            await self._broker.publish(
                row.payload.encode(),
                row.subject,
                headers={"Nats-Msg-Id": row.event_id, "content-type": "application/json"},
                stream=self._stream,
                timeout=self._publish_timeout_s,
            )

        results = await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
        done: list[int] = []
        failed: dict[int, str] = {}
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                failed[row.id] = f"{type(result).__name__}: {result}"
            else:
                done.append(row.id)
        if failed:
            log.warning(
                "outbox_publish_failed", failed=len(failed), sample=next(iter(failed.values()))
            )
        return done, failed

    async def _mark(self, conn: AsyncConnection, done: list[int], failed: dict[int, str]) -> None:
        o = self._outbox
        if done:
            await conn.execute(update(o).where(o.c.id.in_(done)).values(published_at=utcnow()))
            self.published_total += len(done)
        for row_id, error in failed.items():
            await conn.execute(
                update(o)
                .where(o.c.id == row_id)
                .values(attempts=o.c.attempts + 1, last_error=error[:2000])
            )

    async def backlog(self) -> int:
        from sqlalchemy import func

        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.count())
                .select_from(self._outbox)
                .where(self._outbox.c.published_at.is_(None))
            )
        return int(value or 0)


async def claim_inbox(
    conn: AsyncConnection, inbox: Table, *, consumer: str, event_id: uuid.UUID
) -> bool:
    """Record that `consumer` handles `event_id` in this transaction; False if it already did."""
    seen = await conn.scalar(
        select(inbox.c.event_id).where(
            and_(inbox.c.consumer == consumer, inbox.c.event_id == str(event_id))
        )
    )
    if seen is not None:
        return False
    await conn.execute(
        insert(inbox).values(consumer=consumer, event_id=str(event_id), handled_at=utcnow())
    )
    return True


Handler = Callable[[AsyncConnection, E], Awaitable[None]]


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    consumers: list[str] = field(default_factory=list)


class Consumers:
    """Registers durable pull consumers that all follow the delivery rules.

    Each handler runs inside one transaction together with the inbox row, so its effect and
    its "handled" mark commit together; the message is acknowledged only after that commit.
    A failure is retried with a delay (`nak(delay)`) up to `max_deliver` deliveries, then the
    message is recorded in `dead_letters` and terminated. A body that cannot be parsed is
    dead-lettered at once: retrying cannot fix it.
    """

    def __init__(
        self,
        *,
        service: str,
        broker: NatsBroker,
        stream: JStream,
        engine: AsyncEngine,
        tables: MessagingTables,
        max_deliver: int = 6,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        after_commit: Callable[[], None] | None = None,
        batch_size: int = 32,
    ) -> None:
        self.service = service
        self._broker = broker
        self._stream = stream
        self._engine = engine
        self._tables = tables
        self._max_deliver = max_deliver
        self._backoff = tuple(backoff)
        self._after_commit = after_commit
        self._batch_size = batch_size
        self.stats = ConsumerStats()
        self._handlers: dict[str, tuple[type[Event], Handler[Any]]] = {}

    def also_after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` as well after each handler's commit (e.g. to wake a delivery worker)."""
        previous = self._after_commit

        def both() -> None:
            if previous is not None:
                previous()
            callback()

        self._after_commit = both

    def durable_name(self, name: str) -> str:
        return f"{self.service}-{name}"

    def add(self, event_type: type[E], handler: Handler[E], *, name: str | None = None) -> None:
        """Consume `event_type` with `handler` on a named durable pull consumer."""
        consumer = self.durable_name(name or handler.__name__.replace("_", "-"))
        self.stats.consumers.append(consumer)
        self._handlers[consumer] = (event_type, handler)
        subject = event_type.subject

        async def consume(msg: NatsMessage) -> None:
            # The raw bytes, not FastStream's decoded dict: the event class validates them.
            await self._handle(consumer, subject, msg.raw_message.data, msg, event_type, handler)

        consume.__name__ = handler.__name__
        self._broker.subscriber(
            subject,
            stream=self._stream,
            durable=consumer,
            pull_sub=PullSub(batch_size=self._batch_size, timeout=1.0),
            config=ConsumerConfig(
                durable_name=consumer,
                max_deliver=self._max_deliver,
                ack_wait=30,
                max_ack_pending=1000,
            ),
            # We acknowledge ourselves, after the commit; FastStream's default would `term` a
            # failed message and never retry it.
            ack_policy=AckPolicy.MANUAL,
            title=f"{consumer}:{subject}",
            description=handler.__doc__,
        )(consume)

    async def _handle(
        self,
        consumer: str,
        subject: str,
        body: bytes,
        msg: NatsMessage,
        event_type: type[E],
        handler: Handler[E],
    ) -> None:
        raw = msg.raw_message
        deliveries = raw.metadata.num_delivered if raw.metadata else 1
        try:
            event = event_type.model_validate_json(body)
        except Exception as exc:
            await self._dead_letter(
                consumer, subject, None, body, f"unparseable: {exc}", deliveries
            )
            await msg.reject()
            return
        bound = log.bind(
            consumer=consumer, event_id=str(event.event_id), petition_id=str(event.petition_id)
        )
        try:
            async with self._engine.begin() as conn:
                if not await claim_inbox(
                    conn, self._tables.inbox, consumer=consumer, event_id=event.event_id
                ):
                    self.stats.duplicates += 1
                    fresh = False
                else:
                    await handler(conn, event)
                    fresh = True
        except IntegrityError as exc:
            # Two deliveries of one event raced on PostgreSQL: the other committed first.
            if await self._already_handled(consumer, event.event_id):
                await msg.ack()
                self.stats.duplicates += 1
                return
            await self._retry_or_park(bound, consumer, subject, event, body, msg, deliveries, exc)
            return
        except Exception as exc:
            await self._retry_or_park(bound, consumer, subject, event, body, msg, deliveries, exc)
            return
        await msg.ack()
        if fresh:
            self.stats.handled += 1
            if self._after_commit:
                self._after_commit()

    async def retry_dead_letter(self, dead_letter_id: int) -> bool:
        """Run a parked message through its handler again (an operator's retry action).

        Returns False when there is no such parked message or it was retried already; raises
        what the handler raises, leaving the record parked.
        """
        dl = self._tables.dead_letters
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(dl).where(dl.c.id == dead_letter_id))).mappings().first()
            )
        if row is None or row["retried_at"] is not None or row["consumer"] not in self._handlers:
            return False
        event_type, handler = self._handlers[row["consumer"]]
        event = event_type.model_validate_json(row["payload"])
        async with self._engine.begin() as conn:
            if await claim_inbox(
                conn, self._tables.inbox, consumer=row["consumer"], event_id=event.event_id
            ):
                await handler(conn, event)
            await conn.execute(
                update(dl).where(dl.c.id == dead_letter_id).values(retried_at=utcnow())
            )
        if self._after_commit:
            self._after_commit()
        return True

    async def _already_handled(self, consumer: str, event_id: uuid.UUID) -> bool:
        inbox = self._tables.inbox
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                select(inbox.c.event_id).where(
                    and_(inbox.c.consumer == consumer, inbox.c.event_id == str(event_id))
                )
            )
        return found is not None

    async def _retry_or_park(
        self,
        bound: Any,
        consumer: str,
        subject: str,
        event: Event,
        body: bytes,
        msg: NatsMessage,
        deliveries: int,
        exc: BaseException,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if deliveries >= self._max_deliver:
            bound.error("message_dead_lettered", deliveries=deliveries, error=error)
            await self._dead_letter(consumer, subject, event.event_id, body, error, deliveries)
            await msg.reject()
            return
        delay = self._backoff[min(deliveries - 1, len(self._backoff) - 1)]
        bound.warning("message_retry", deliveries=deliveries, delay_s=delay, error=error)
        self.stats.retried += 1
        await msg.nack(delay=delay)

    async def _dead_letter(
        self,
        consumer: str,
        subject: str,
        event_id: uuid.UUID | None,
        body: bytes,
        error: str,
        deliveries: int,
    ) -> None:
        self.stats.dead_lettered += 1
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(self._tables.dead_letters).values(
                    consumer=consumer,
                    subject=subject,
                    event_id=str(event_id) if event_id else None,
                    payload=body.decode(errors="replace"),
                    error=error[:4000],
                    deliveries=deliveries,
                    failed_at=utcnow(),
                )
            )


async def list_dead_letters(
    engine: AsyncEngine, tables: MessagingTables, *, limit: int = 100
) -> list[dict[str, Any]]:
    dl = tables.dead_letters
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(dl).order_by(dl.c.id.desc()).limit(limit))).mappings().all()
        )
    return [dict(r) for r in rows]
