"""Delivery rules in one place: the transactional outbox and its relay, the inbox, the consumer
policy and the dead-letter record. Every service uses these; none re-implements them."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Insert,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.db import UtcDateTime, is_database_outage, is_sqlite, utcnow
from shared.events import CATALOGUE, Event, derived_id
from shared.events.base import STREAM_SUBJECT_PREFIX
from shared.worker import Worker

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=Event)

# Seconds to wait before each redelivery of a message whose handler failed.
DEFAULT_BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)


class NotYet(Exception):
    """A handler cannot apply this event before an earlier one about the same petition (a
    withdrawal before the submission it withdraws, feedback before the resolution): the
    message is kept, comes back after a pause and is applied then, in order. It is parked,
    visibly, only if what it waits for never comes within `max_deliver` deliveries."""


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
        self._publish_timeout_s = publish_timeout_s
        self.published_total = 0
        self._worker = Worker("outbox-relay", self._step, idle_s=idle_poll_s)

    def wake(self) -> None:
        """Tell the relay there is something new, so it does not wait for its next poll."""
        self._worker.wake()

    @property
    def running(self) -> bool:
        return self._worker.running

    def start(self) -> None:
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    async def _step(self) -> bool:
        return await self.publish_pending() >= self._batch_size

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
            # One publisher at a time: two replicas each taking a slice of the outbox could
            # publish a petition's later event before its earlier one. The lock ends with the
            # transaction; a replica that does not get it has nothing to do this round.
            if not await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _RELAY_LOCK}
            ):
                return 0
            rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
            if not rows:
                return 0
            done, failed = await self._publish(rows)
            await self._mark(conn, done, failed)
        return len(done)

    async def _publish(self, rows: Sequence[Any]) -> tuple[list[int], dict[int, str]]:
        """Publish a batch: petitions side by side, each petition's events one after the other
        in commit order. When one fails, that petition's later events wait for the next batch,
        so a consumer never sees `withdrawn` before the `submitted` it follows."""
        # nats-py's JetStream context under the broker's connection: the same PubAck, without
        # FastStream's per-message publish wrapper (measured 1.5x the rate for a batch).
        js = self._broker.config.connection_state.stream
        done: list[int] = []
        failed: dict[int, str] = {}

        async def in_order(chain: list[Any]) -> None:
            for row in chain:
                try:
                    await js.publish(
                        row.subject,
                        row.payload.encode(),
                        headers={"Nats-Msg-Id": row.event_id, "content-type": "application/json"},
                        stream=self._stream,
                        timeout=self._publish_timeout_s,
                    )
                except Exception as exc:
                    failed[row.id] = f"{type(exc).__name__}: {exc}"
                    return
                done.append(row.id)

        await asyncio.gather(*(in_order(chain) for chain in _by_petition(rows)))
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
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(func.count())
                .select_from(self._outbox)
                .where(self._outbox.c.published_at.is_(None))
            )
        return int(value or 0)


# The advisory lock the relays of one service's database share (each service has its own).
_RELAY_LOCK = 0x5045_5449_5449_4F4E  # "PETITION"

# Messages whose outage deliveries are remembered at most (the oldest are forgotten first).
_MAX_REMEMBERED = 100_000


def _sequence(raw: Msg) -> int:
    return raw.metadata.sequence.stream if raw.metadata and raw.metadata.sequence else 0


# How the error of a parked message that no retry can fix begins (a body that does not parse,
# a subject no handler knows); `retryable` reads it.
UNRETRYABLE = "unretryable: "


def stream_message_id(raw: Msg) -> uuid.UUID:
    """The id a message without a readable event id is parked under: its place in the stream,
    so each redelivery of it finds the one row already written instead of adding another."""
    stream = raw.metadata.stream if raw.metadata else ""
    return derived_id("stream-message", stream, _sequence(raw))


def retryable(dead_letter: Mapping[str, Any]) -> bool:
    """Whether an operator's retry can succeed: not for a message no handler can read."""
    return dead_letter["retried_at"] is None and not str(dead_letter["error"]).startswith(
        UNRETRYABLE
    )


class Unretryable(Exception):
    """A parked message that a retry cannot fix (it does not parse, or nobody handles it)."""


def _by_petition(rows: Sequence[Any]) -> list[list[Any]]:
    """The rows grouped by the petition their event is about, each group in outbox order."""
    chains: dict[str, list[Any]] = {}
    for row in rows:
        try:
            key = str(json.loads(row.payload)["petition_id"])
        except (ValueError, KeyError, TypeError):
            key = row.event_id
        chains.setdefault(key, []).append(row)
    return list(chains.values())


@functools.cache
def _inbox_statements(inbox: Table) -> tuple[Select[tuple[str]], Insert]:
    # Built once per table: constructing statements was a quarter of a consumer's time.
    seen = select(inbox.c.event_id).where(
        and_(inbox.c.consumer == bindparam("consumer"), inbox.c.event_id == bindparam("event_id"))
    )
    return seen, insert(inbox)


async def claim_inbox(
    conn: AsyncConnection, inbox: Table, *, consumer: str, event_id: uuid.UUID
) -> bool:
    """Record that `consumer` handles `event_id` in this transaction; False if it already did."""
    seen, add = _inbox_statements(inbox)
    key = {"consumer": consumer, "event_id": str(event_id)}
    if await conn.scalar(seen, key) is not None:
        return False
    await conn.execute(add, {**key, "handled_at": utcnow()})
    return True


Handler = Callable[[AsyncConnection, E], Awaitable[None]]


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    ignored: int = 0
    consumers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Registration:
    name: str
    event_type: type[Event]
    handler: Handler[Any]


@dataclass
class _Delivery:
    raw: Msg
    subject: str
    deliveries: int
    event: Event | None = None
    registrations: tuple[_Registration, ...] = ()
    parse_error: str | None = None


def durable_name(service: str) -> str:
    """The name of a service's durable consumer on the petitions stream (also what its NATS
    user may create and read: `shared.nats_auth`)."""
    return f"{service}-events"


def inbox_prefix(service: str) -> str:
    """The prefix of a service's reply inboxes: its NATS user may subscribe to these only, so
    no other service can read its replies (nats-py's `inbox_prefix`)."""
    return f"_INBOX_{service}"


class Consumers:
    """One durable pull consumer per service, following the delivery rules for every handler.

    The service's consumer reads the whole petitions stream in order, in batches. A batch is
    handled in one transaction: for each message and each of its handlers, an inbox row and
    the handler's effect; the messages are acknowledged only after the commit. Batching is what
    makes a consumer fast (one commit for many events) and reading in stream order keeps a
    petition's events in the order they happened.

    If the batch fails, its messages are handled one by one, each in its own transaction, so
    one bad message cannot hold back the others: a failing one is retried with a delay
    (`nak(delay)`) up to `max_deliver` deliveries, then recorded in `dead_letters` and
    terminated, in that order: while the record cannot be written it keeps coming back. A body
    that cannot be parsed, or a subject no event of the catalogue has, is dead-lettered at once
    and marked unretryable: retrying cannot fix it. Such a message is parked under its stream
    sequence (`stream_message_id`), so a redelivery adds no second row. Messages of a known
    subject that no handler of this service wants are acknowledged and skipped.
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
        batch_size: int = 100,
        fetch_timeout_s: float = 2.0,
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
        self._fetch_timeout_s = fetch_timeout_s
        self._pending: list[tuple[Msg, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.stats = ConsumerStats()
        # Stream sequence → deliveries spent waiting for the database, in this process.
        self._outage_deliveries: dict[int, int] = {}
        self._by_subject: dict[str, list[_Registration]] = {}
        self._by_name: dict[str, _Registration] = {}
        self._subscribed = False

    @property
    def durable(self) -> str:
        """The service's durable consumer; replicas of the service share it."""
        return durable_name(self.service)

    def also_after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` as well after each handler's commit (e.g. to wake a delivery worker)."""
        previous = self._after_commit

        def both() -> None:
            if previous is not None:
                previous()
            callback()

        self._after_commit = both

    async def reconcile(self) -> None:
        """Bring a durable consumer made by an earlier version (which let the server stop
        redelivering at `max_deliver`) to an unlimited server-side count: see `_park`."""
        if not self._subscribed:
            return
        js = self._broker.config.connection_state.stream
        try:
            info = await js.consumer_info(self._stream.name, self.durable)
        except NotFoundError:
            return
        if info.config.max_deliver in (None, -1):
            return
        config = info.config
        config.max_deliver = -1
        await js.add_consumer(self._stream.name, config=config)
        log.info("consumer_reconciled", consumer=self.durable, max_deliver=-1)

    def add(self, event_type: type[E], handler: Handler[E], *, name: str | None = None) -> None:
        """Handle `event_type` with `handler`; `name` (default: the handler's) keys its inbox."""
        key = f"{self.service}-{name or handler.__name__.replace('_', '-')}"
        if key in self._by_name:
            raise ValueError(f"two handlers named {key}")
        registration = _Registration(key, event_type, handler)
        self._by_name[key] = registration
        self._by_subject.setdefault(event_type.subject, []).append(registration)
        self.stats.consumers.append(key)
        self._subscribe()

    def _subscribe(self) -> None:
        if self._subscribed:
            return
        self._subscribed = True

        async def consume(msg: NatsMessage) -> None:
            await self._enqueue(msg.raw_message)

        self._broker.subscriber(
            f"{STREAM_SUBJECT_PREFIX}.>",
            stream=self._stream,
            durable=self.durable,
            # FastStream gives a pull subscription the default `_INBOX.` whatever the connection's
            # prefix; the service's NATS user may only read its own inboxes.
            inbox_prefix=f"{inbox_prefix(self.service)}.".encode(),
            # FastStream's own batch mode loses a partly fetched batch when nats-py raises the
            # builtin TimeoutError mid-collection (the messages then wait for `ack_wait`), so
            # messages come one fetch at a time and `_enqueue` gathers them into a batch.
            pull_sub=PullSub(batch_size=self._batch_size, timeout=self._fetch_timeout_s),
            config=ConsumerConfig(
                durable_name=self.durable,
                # Unlimited on the server: at our own `max_deliver` the message is parked in
                # `dead_letters` and terminated, and only once that row is committed (`_park`).
                # A server-side limit would drop it silently when that write fails.
                max_deliver=-1,
                ack_wait=60,
                max_ack_pending=10_000,
            ),
            # We acknowledge ourselves, after the commit; FastStream's default would `term` a
            # failed message and never retry it.
            ack_policy=AckPolicy.MANUAL,
            title=self.durable,
            description=f"{self.service}: every petition event, in stream order",
        )(consume)

    async def _enqueue(self, raw: Msg) -> None:
        """Queue one fetched message and wait until its batch is handled.

        FastStream starts a task per fetched message, in fetch order; they all queue here
        before the flusher runs, so one fetch becomes one transaction, in stream order.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((raw, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"{self.durable}-flush")
        await done

    async def _flush(self) -> None:
        await asyncio.sleep(0)
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._handle_batch([raw for raw, _ in batch])
            except Exception:
                # Unacknowledged messages come back after `ack_wait`; nothing is lost.
                log.exception("consumer_batch_failed", consumer=self.durable, size=len(batch))
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    def _prepare(self, raw: Msg) -> _Delivery:
        deliveries = raw.metadata.num_delivered if raw.metadata else 1
        # Deliveries spent waiting for the database are not the message's: they do not count
        # towards parking it (`_wait_for_database`).
        deliveries -= self._outage_deliveries.get(_sequence(raw), 0)
        delivery = _Delivery(raw=raw, subject=raw.subject, deliveries=max(deliveries, 1))
        registrations = self._by_subject.get(raw.subject)
        if not registrations:
            return delivery
        delivery.registrations = tuple(registrations)
        try:
            delivery.event = registrations[0].event_type.model_validate_json(raw.data)
        except Exception as exc:
            delivery.parse_error = f"unparseable: {exc}"
        return delivery

    async def _apply(self, conn: AsyncConnection, delivery: _Delivery) -> tuple[int, int]:
        """Run every handler of one message in `conn`; returns (handled, duplicates)."""
        assert delivery.event is not None
        handled = duplicates = 0
        for registration in delivery.registrations:
            if await claim_inbox(
                conn,
                self._tables.inbox,
                consumer=registration.name,
                event_id=delivery.event.event_id,
            ):
                await registration.handler(conn, delivery.event)
                handled += 1
            else:
                duplicates += 1
        return handled, duplicates

    async def _handle_batch(self, raws: list[Msg]) -> None:
        deliveries = [self._prepare(raw) for raw in raws]
        wanted = [d for d in deliveries if d.event is not None]
        for d in deliveries:
            if d.subject not in CATALOGUE:
                # No version of this service knows the subject: shown, never silently skipped.
                await self._park(
                    d,
                    consumer=self.durable,
                    event_id=stream_message_id(d.raw),
                    error=f"{UNRETRYABLE}unknown subject {d.subject}",
                )
            elif not d.registrations:
                self.stats.ignored += 1
                await d.raw.ack()
            elif d.parse_error is not None:
                await self._park(
                    d,
                    consumer=d.registrations[0].name,
                    event_id=stream_message_id(d.raw),
                    error=UNRETRYABLE + d.parse_error,
                )
        if not wanted:
            return
        if len(wanted) == 1:
            await self._handle_one(wanted[0])
            return
        try:
            handled = duplicates = 0
            async with self._engine.begin() as conn:
                for d in wanted:
                    h, dup = await self._apply(conn, d)
                    handled += h
                    duplicates += dup
        except Exception as exc:
            if is_database_outage(exc):
                # Nobody's fault, and nothing can be handled until the database is back.
                for d in wanted:
                    await self._wait_for_database(d)
                return
            # Find the culprit: each message alone, in its own transaction.
            for d in wanted:
                await self._handle_one(d)
            return
        for d in wanted:
            self._outage_deliveries.pop(_sequence(d.raw), None)
            await d.raw.ack()
        self.stats.handled += handled
        self.stats.duplicates += duplicates
        if handled and self._after_commit:
            self._after_commit()

    async def _handle_one(self, d: _Delivery) -> None:
        assert d.event is not None
        bound = log.bind(
            subject=d.subject, event_id=str(d.event.event_id), petition_id=str(d.event.petition_id)
        )
        try:
            async with self._engine.begin() as conn:
                handled, duplicates = await self._apply(conn, d)
        except IntegrityError as exc:
            # Two deliveries of one event raced on PostgreSQL: the other may have committed first.
            if await self._all_handled(d):
                await d.raw.ack()
                self.stats.duplicates += len(d.registrations)
                return
            await self._retry_or_park(bound, d, exc)
            return
        except Exception as exc:
            await self._retry_or_park(bound, d, exc)
            return
        self._outage_deliveries.pop(_sequence(d.raw), None)
        await d.raw.ack()
        self.stats.handled += handled
        self.stats.duplicates += duplicates
        if handled and self._after_commit:
            self._after_commit()

    async def _all_handled(self, d: _Delivery) -> bool:
        assert d.event is not None
        inbox = self._tables.inbox
        async with self._engine.connect() as conn:
            seen = await conn.scalar(
                select(func.count())
                .select_from(inbox)
                .where(
                    and_(
                        inbox.c.event_id == str(d.event.event_id),
                        inbox.c.consumer.in_([r.name for r in d.registrations]),
                    )
                )
            )
        return int(seen or 0) == len(d.registrations)

    async def retry_dead_letter(self, dead_letter_id: int) -> bool:
        """Run a parked message through its handlers again (an operator's retry action).

        Returns False when there is no such parked message or it was retried already; raises
        `Unretryable` for a message no handler can read, and what a handler raises, leaving
        the record parked.
        """
        dl = self._tables.dead_letters
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(select(dl).where(dl.c.id == dead_letter_id))).mappings().first()
            )
        if row is None or row["retried_at"] is not None:
            return False
        registrations = self._by_subject.get(row["subject"])
        if not retryable(dict(row)) or not registrations:
            raise Unretryable(str(row["error"]).removeprefix(UNRETRYABLE))
        event = registrations[0].event_type.model_validate_json(row["payload"])
        async with self._engine.begin() as conn:
            for registration in registrations:
                if await claim_inbox(
                    conn, self._tables.inbox, consumer=registration.name, event_id=event.event_id
                ):
                    await registration.handler(conn, event)
            await conn.execute(
                update(dl).where(dl.c.id == dead_letter_id).values(retried_at=utcnow())
            )
        if self._after_commit:
            self._after_commit()
        return True

    async def _retry_or_park(self, bound: Any, d: _Delivery, exc: BaseException) -> None:
        assert d.event is not None
        error = f"{type(exc).__name__}: {exc}"
        if is_database_outage(exc):
            bound.warning("message_waits_for_database", deliveries=d.deliveries, error=error)
            await self._wait_for_database(d)
            return
        if isinstance(exc, NotYet) and d.deliveries < self._max_deliver:
            delay = self._delay(d.deliveries)
            bound.info("message_waits_for_earlier_event", deliveries=d.deliveries, delay_s=delay)
            self.stats.retried += 1
            await d.raw.nak(delay=delay)
            return
        if d.deliveries >= self._max_deliver:
            bound.error("message_dead_lettered", deliveries=d.deliveries, error=error)
            await self._park(
                d,
                consumer=",".join(r.name for r in d.registrations),
                event_id=d.event.event_id,
                error=error,
            )
            return
        delay = self._delay(d.deliveries)
        bound.warning("message_retry", deliveries=d.deliveries, delay_s=delay, error=error)
        self.stats.retried += 1
        await d.raw.nak(delay=delay)

    async def _wait_for_database(self, d: _Delivery) -> None:
        """Not the message's fault: it is neither parked nor dropped, and comes back at the
        slowest pace until the database answers (`/readyz` says not ready meanwhile). The
        delivery does not count towards parking it, so an event that comes back after a long
        outage still gets its full allowance of retries (`_prepare`)."""
        seq = _sequence(d.raw)
        if len(self._outage_deliveries) >= _MAX_REMEMBERED:
            self._outage_deliveries.pop(next(iter(self._outage_deliveries)))
        self._outage_deliveries[seq] = self._outage_deliveries.get(seq, 0) + 1
        self.stats.retried += 1
        await d.raw.nak(delay=self._backoff[-1])

    def _delay(self, deliveries: int) -> float:
        return self._backoff[min(deliveries - 1, len(self._backoff) - 1)]

    async def _park(
        self, d: _Delivery, *, consumer: str, event_id: uuid.UUID | None, error: str
    ) -> None:
        """Record the message in `dead_letters`, then terminate it; never the other way round.

        The server redelivers without limit (`max_deliver=-1`): the count that parks is ours.
        So when the dead-letter row cannot be written (the database that failed the handler is
        usually still down), the message is nak'ed with the longest delay and comes back: it
        is handled when the database returns, or parked then. A terminated message that no
        row records would be a petition lost for good.
        """
        try:
            await self._dead_letter(consumer, d.subject, event_id, d.raw.data, error, d.deliveries)
        except Exception as exc:
            delay = self._backoff[-1]
            log.error(
                "dead_letter_write_failed",
                consumer=self.durable,
                subject=d.subject,
                event_id=str(event_id) if event_id else None,
                deliveries=d.deliveries,
                retry_in_s=delay,
                error=f"{type(exc).__name__}: {exc}",
            )
            await d.raw.nak(delay=delay)
            return
        self.stats.dead_lettered += 1
        self._outage_deliveries.pop(_sequence(d.raw), None)
        await d.raw.term()

    async def _dead_letter(
        self,
        consumer: str,
        subject: str,
        event_id: uuid.UUID | None,
        body: bytes,
        error: str,
        deliveries: int,
    ) -> None:
        """One parked row per message: a redelivery after a lost `term` finds it already
        recorded (and still waiting for its retry) and adds no second row."""
        dl = self._tables.dead_letters
        async with self._engine.begin() as conn:
            if event_id is not None:
                already = await conn.scalar(
                    select(dl.c.id)
                    .where(
                        and_(
                            dl.c.event_id == str(event_id),
                            dl.c.consumer == consumer[:100],
                            dl.c.retried_at.is_(None),
                        )
                    )
                    .limit(1)
                )
                if already is not None:
                    return
            await conn.execute(
                insert(dl).values(
                    consumer=consumer[:100],
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
