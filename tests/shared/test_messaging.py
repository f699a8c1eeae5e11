"""The delivery rules on real parts: outbox relay to JetStream, inbox dedup, retries, dead letters."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy
from nats.js.errors import NotFoundError
from sqlalchemy import Column, MetaData, String, Table, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.events import PetitionSubmitted, derived_id
from shared.messaging import (
    _RELAY_LOCK,
    NotYet,
    Unretryable,
    add_to_outbox,
    list_dead_letters,
    messaging_tables,
    retryable,
)
from shared.nats_auth import BusCredentials
from shared.runtime import Runtime, build_runtime
from shared.settings import CommonSettings
from shared.streams import PETITIONS_STREAM, ensure_stream
from tests.support import connect_nats, eventually, service_nats

metadata = MetaData()
effects = Table("effects", metadata, Column("event_id", String(36), primary_key=True))
tables = messaging_tables(metadata)


def stream_message_id_of(stream: str, seq: int) -> uuid.UUID:
    """What a message without a readable event id is parked under (written out here, not
    imported, so the test pins the key)."""
    return derived_id("stream-message", stream, seq)


def submitted(**overrides: object) -> PetitionSubmitted:
    fields: dict[str, object] = {
        "reference": "PA-TEST",
        "unit_id": "u1",
        "category_id": "other",
        "title": "Đèn đường hỏng",
        "description": "Đèn ở đầu hẻm 3 không sáng",
    }
    fields.update(overrides)
    return PetitionSubmitted.new(producer="test", petition_id=uuid.uuid4(), **fields)  # type: ignore[arg-type]


@dataclass
class Harness:
    runtime: Runtime

    async def count(self, table: Table) -> int:
        async with self.runtime.engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def harness(nats_url: str, database_url: str) -> AsyncIterator[Harness]:
    settings = CommonSettings(**service_nats(nats_url, "admin"), max_deliver=3)
    runtime = build_runtime(
        service="t", settings=settings, database_url=database_url, tables=tables
    )
    async with runtime.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield Harness(runtime)
    await runtime.relay.stop()
    await runtime.broker.stop()
    await runtime.engine.dispose()


async def publish(nats_url: str, *events: PetitionSubmitted) -> None:
    """Put events on the stream as a relay would, each with its id as `Nats-Msg-Id`."""
    nc = await connect_nats(nats_url)
    try:
        for event in events:
            await nc.jetstream().publish(
                event.subject, event.to_json(), headers={"Nats-Msg-Id": str(event.event_id)}
            )
    finally:
        await nc.close()


async def stream_messages(nats_url: str, subject: str) -> list[nats.aio.msg.Msg]:
    nc = await connect_nats(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, stream=PETITIONS_STREAM, ordered_consumer=True)
        got = []
        while True:
            try:
                got.append(await sub.next_msg(timeout=0.5))
            except TimeoutError:
                break
        return got
    finally:
        await nc.close()


async def test_relay_publishes_with_msg_id_and_marks_sent_after_ack(
    harness: Harness, nats_url: str
) -> None:
    rt = harness.runtime
    events = [submitted() for _ in range(5)]
    async with rt.engine.begin() as conn:
        await add_to_outbox(conn, tables.outbox, *events)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    assert await rt.relay.publish_pending() == 5

    msgs = await stream_messages(nats_url, PetitionSubmitted.subject)
    assert [m.headers["Nats-Msg-Id"] for m in msgs if m.headers] == [
        str(e.event_id) for e in events
    ]
    assert await rt.relay.backlog() == 0


async def test_relay_resumes_rows_left_unpublished_and_stream_drops_republished_ids(
    harness: Harness, nats_url: str
) -> None:
    rt = harness.runtime
    event = submitted()
    async with rt.engine.begin() as conn:
        await add_to_outbox(conn, tables.outbox, event)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    assert await rt.relay.publish_pending() == 1
    # A crash between the PubAck and the "sent" mark: the row is published again on restart.
    async with rt.engine.begin() as conn:
        await conn.execute(tables.outbox.update().values(published_at=None))
    assert await rt.relay.publish_pending() == 1
    msgs = await stream_messages(nats_url, PetitionSubmitted.subject)
    assert len(msgs) == 1


async def test_relay_keeps_each_petitions_events_in_commit_order_when_one_fails(
    harness: Harness, nats_url: str
) -> None:
    """The first event of petition P cannot be published (its subject is outside the stream):
    P's next event waits for it instead of overtaking it; another petition's event goes."""
    rt = harness.runtime
    first = submitted()
    then = submitted(title="Bổ sung").model_copy(update={"petition_id": first.petition_id})
    other = submitted()
    async with rt.engine.begin() as conn:
        await add_to_outbox(conn, tables.outbox, first, then, other)
        await conn.execute(
            tables.outbox.update()
            .where(tables.outbox.c.event_id == str(first.event_id))
            .values(subject="elsewhere.submitted.v1")
        )
    rt.relay._publish_timeout_s = 0.5
    await rt.broker.start()
    await ensure_stream(rt.broker)

    assert await rt.relay.publish_pending() == 1
    ids = [m.headers["Nats-Msg-Id"] for m in await stream_messages(nats_url, "petitions.>")]
    assert ids == [str(other.event_id)]

    async with rt.engine.begin() as conn:
        await conn.execute(
            tables.outbox.update()
            .where(tables.outbox.c.event_id == str(first.event_id))
            .values(subject=first.subject)
        )
    assert await rt.relay.publish_pending() == 2
    ids = [m.headers["Nats-Msg-Id"] for m in await stream_messages(nats_url, "petitions.>")]
    assert ids == [str(other.event_id), str(first.event_id), str(then.event_id)]


async def test_relay_keeps_rows_while_nats_is_unreachable(
    database_url: str, tmp_path: object, nats_credentials: BusCredentials
) -> None:
    from tests.conftest import authenticated_nats

    server = authenticated_nats(tmp_path / "nats", nats_credentials)  # type: ignore[operator]
    server.start()
    settings = CommonSettings(**service_nats(server.url, "admin"))
    rt = build_runtime(service="t", settings=settings, database_url=database_url, tables=tables)
    async with rt.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await add_to_outbox(conn, tables.outbox, submitted())
    await rt.broker.start()
    await ensure_stream(rt.broker)
    server.stop()
    try:
        assert await rt.relay.publish_pending() == 0
        assert await rt.relay.backlog() == 1
        server.start()
        published = await eventually(
            rt.relay.publish_pending, timeout=20, what="publish after restart"
        )
        assert published == 1
        assert await rt.relay.backlog() == 0
    finally:
        await rt.broker.stop()
        await rt.engine.dispose()
        server.stop()


async def test_consumer_handles_each_event_once_and_acks_after_commit(
    harness: Harness, nats_url: str
) -> None:
    rt = harness.runtime
    calls: list[uuid.UUID] = []

    async def record_effect(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        calls.append(event.event_id)
        await conn.execute(insert(effects).values(event_id=str(event.event_id)))

    rt.consumers.add(PetitionSubmitted, record_effect)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    event = submitted()
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    # Three deliveries of one event under different message ids (JetStream's dedup bypassed).
    for _ in range(3):
        await js.publish(event.subject, event.to_json(), headers={"Nats-Msg-Id": str(uuid.uuid4())})
    await nc.close()

    async def all_seen() -> bool:
        return rt.consumers.stats.handled + rt.consumers.stats.duplicates == 3

    await eventually(all_seen, what="three deliveries handled")
    assert calls == [event.event_id]
    assert await harness.count(effects) == 1


async def test_failing_handler_is_retried_then_parked_and_retried_by_hand(
    harness: Harness, nats_url: str
) -> None:
    rt = harness.runtime
    attempts: list[int] = []
    healthy = False

    async def flaky(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        attempts.append(1)
        await conn.execute(insert(effects).values(event_id=str(event.event_id)))
        if not healthy:
            raise RuntimeError("downstream unavailable")

    rt.consumers._backoff = (0.05,)
    rt.consumers.add(PetitionSubmitted, flaky)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    event = submitted()
    await publish(nats_url, event)

    async def parked() -> int:
        return await harness.count(tables.dead_letters)

    await eventually(parked, what="dead letter recorded")
    assert len(attempts) == 3  # max_deliver
    async with rt.engine.connect() as conn:
        assert await conn.scalar(select(tables.dead_letters.c.deliveries)) == 3
    assert await harness.count(effects) == 0  # every failed attempt rolled back

    healthy = True
    async with rt.engine.connect() as conn:
        dl_id = await conn.scalar(select(tables.dead_letters.c.id))
    assert await rt.consumers.retry_dead_letter(int(dl_id)) is True
    assert await harness.count(effects) == 1
    assert await rt.consumers.retry_dead_letter(int(dl_id)) is False


async def test_message_is_not_terminated_until_its_dead_letter_row_is_committed(
    harness: Harness, nats_url: str
) -> None:
    """The dead-letter table is unavailable when the message runs out of deliveries (as when
    the database that fails the handler is down): the message keeps coming back instead of
    being terminated unrecorded, and is parked once the table can be written again."""
    rt = harness.runtime
    attempts: list[int] = []

    async def failing(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        attempts.append(1)
        raise RuntimeError("downstream unavailable")

    async with rt.engine.begin() as conn:
        await conn.run_sync(lambda sync: tables.dead_letters.drop(sync))
    rt.consumers._backoff = (0.05,)
    rt.consumers.add(PetitionSubmitted, failing)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    event = submitted()
    await publish(nats_url, event)

    async def delivered_beyond_the_limit() -> bool:
        return len(attempts) >= 6

    await eventually(delivered_beyond_the_limit, what="deliveries beyond max_deliver")
    assert rt.consumers.stats.dead_lettered == 0
    async with rt.engine.begin() as conn:
        await conn.run_sync(lambda sync: tables.dead_letters.create(sync))

    async def parked() -> int:
        return await harness.count(tables.dead_letters)

    await eventually(parked, what="dead letter recorded once the table is back")
    async with rt.engine.connect() as conn:
        row = (await conn.execute(select(tables.dead_letters))).mappings().one()
    assert row["event_id"] == str(event.event_id)
    assert row["deliveries"] > 3
    assert rt.consumers.stats.dead_lettered == 1


async def test_a_database_outage_never_parks_a_message_whatever_its_delivery_count(
    harness: Harness, nats_url: str
) -> None:
    """Failures that mean "the database is down" are not the message's fault: past
    `max_deliver` (3 here) it is still neither parked nor dropped, and is handled once the
    database answers."""
    rt = harness.runtime
    attempts: list[int] = []

    async def needs_database(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        attempts.append(1)
        if len(attempts) <= 5:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        await conn.execute(insert(effects).values(event_id=str(event.event_id)))

    rt.consumers._backoff = (0.05,)
    rt.consumers.add(PetitionSubmitted, needs_database)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    event = submitted()
    await publish(nats_url, event)

    async def applied() -> int:
        return await harness.count(effects)

    await eventually(applied, what="handled once the database answers")
    assert len(attempts) == 6
    assert await harness.count(tables.dead_letters) == 0
    assert rt.consumers.stats.dead_lettered == 0


async def test_an_event_that_arrives_before_the_one_it_follows_is_applied_after_it(
    harness: Harness, nats_url: str
) -> None:
    """The stream holds a petition's second event before its first (as a relay retry can
    leave them): the second is kept, not dropped, and applied once the first has been."""
    rt = harness.runtime
    applied: list[str] = []
    first = submitted(title="first")
    second = submitted(title="second").model_copy(update={"petition_id": first.petition_id})

    async def in_order(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        if event.title == "second" and "first" not in applied:
            raise NotYet("the first event of this petition is not applied yet")
        applied.append(event.title)
        await conn.execute(insert(effects).values(event_id=str(event.event_id)))

    rt.consumers._backoff = (0.05,)
    rt.consumers.add(PetitionSubmitted, in_order)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    await publish(nats_url, second, first)

    async def both() -> bool:
        return await harness.count(effects) == 2

    await eventually(both, what="both events applied")
    assert applied == ["first", "second"]
    assert await harness.count(tables.dead_letters) == 0


async def test_deliveries_spent_waiting_for_the_database_leave_the_full_allowance(
    harness: Harness, nats_url: str
) -> None:
    """Past `max_deliver` (3) deliveries during an outage, the event then meets a transient
    refusal (`NotYet`, twice): it is not parked at once but retried, and applied."""
    rt = harness.runtime
    attempts: list[int] = []

    async def after_an_outage(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        attempts.append(1)
        if len(attempts) <= 5:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        if len(attempts) <= 7:
            raise NotYet("an earlier event of this petition is not applied yet")
        await conn.execute(insert(effects).values(event_id=str(event.event_id)))

    rt.consumers._backoff = (0.05,)
    rt.consumers.add(PetitionSubmitted, after_an_outage)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    event = submitted()
    await publish(nats_url, event)

    async def applied() -> int:
        return await harness.count(effects)

    await eventually(applied, what="applied after the outage and the wait")
    assert len(attempts) == 8
    assert await harness.count(tables.dead_letters) == 0


async def test_unparseable_message_is_parked_at_once(harness: Harness, nats_url: str) -> None:
    rt = harness.runtime

    async def never(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        raise AssertionError("must not be called")

    rt.consumers.add(PetitionSubmitted, never)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    nc = await connect_nats(nats_url)
    await nc.jetstream().publish(
        PetitionSubmitted.subject, b"{not json", headers={"Nats-Msg-Id": "x1"}
    )
    await nc.close()

    async def parked() -> int:
        return await harness.count(tables.dead_letters)

    await eventually(parked)
    assert rt.consumers.stats.retried == 0


async def test_a_consumer_left_with_a_server_side_delivery_limit_is_brought_to_unlimited(
    harness: Harness, nats_url: str
) -> None:
    """An earlier version let the server give up at `max_deliver`; after `reconcile` only the
    consumer's own count (which parks the message before terminating it) stops deliveries."""
    rt = harness.runtime

    async def handled(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        return None

    rt.consumers.add(PetitionSubmitted, handled)
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    # The stream is there already (the `nats_url` fixture makes it, as intake would).
    await js.add_consumer(
        PETITIONS_STREAM,
        ConsumerConfig(
            durable_name=rt.consumers.durable,
            filter_subject="petitions.>",
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=6,
        ),
    )
    await rt.broker.start()
    await ensure_stream(rt.broker)
    await rt.consumers.reconcile()
    info = await js.consumer_info(PETITIONS_STREAM, rt.consumers.durable)
    await nc.close()
    assert info.config.max_deliver == -1


@pytest.mark.postgres
async def test_one_relay_publishes_at_a_time_so_replicas_cannot_reorder_a_petition(
    nats_url: str, postgres_url: str
) -> None:
    """While another replica's relay holds the outbox (its advisory lock), this one publishes
    nothing, rather than a later slice of the outbox before the earlier one."""
    settings = CommonSettings(**service_nats(nats_url, "admin"))
    rt = build_runtime(service="t", settings=settings, database_url=postgres_url, tables=tables)
    try:
        async with rt.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await add_to_outbox(conn, tables.outbox, submitted())
        await rt.broker.start()
        await ensure_stream(rt.broker)
        async with rt.engine.begin() as other:
            await other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK})
            assert await rt.relay.publish_pending() == 0
        assert await rt.relay.publish_pending() == 1
    finally:
        await rt.broker.stop()
        await rt.engine.dispose()


async def test_an_unparseable_message_redelivered_after_a_lost_term_stays_one_dead_letter(
    harness: Harness, nats_url: str
) -> None:
    """Its row was written but the `term` never reached the server (a crash in between): the
    redelivery finds the row by the message's place in the stream and adds no second one."""
    rt = harness.runtime

    async def never(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        raise AssertionError("must not be called")

    rt.consumers.add(PetitionSubmitted, never)
    # The stream is new: the message will be its first. Its row is there before it arrives.
    already = stream_message_id_of(PETITIONS_STREAM, 1)
    async with rt.engine.begin() as conn:
        await conn.execute(
            insert(tables.dead_letters).values(
                consumer=rt.consumers._by_name["t-never"].name,
                subject=PetitionSubmitted.subject,
                event_id=str(already),
                payload="{not json",
                error="unretryable: unparseable: an earlier delivery",
                deliveries=1,
                failed_at=datetime.now(UTC),
            )
        )
    await rt.broker.start()
    await ensure_stream(rt.broker)
    nc = await connect_nats(nats_url)
    ack = await nc.jetstream().publish(
        PetitionSubmitted.subject, b"{not json", headers={"Nats-Msg-Id": "bad-1"}
    )
    await nc.close()
    assert ack.seq == 1

    async def terminated() -> bool:
        return rt.consumers.stats.dead_lettered == 1

    await eventually(terminated, what="the redelivery terminated")
    assert await harness.count(tables.dead_letters) == 1
    [row] = await list_dead_letters(rt.engine, tables)
    assert not retryable(row)
    with pytest.raises(Unretryable):
        await rt.consumers.retry_dead_letter(int(row["id"]))


async def test_a_subject_no_event_has_is_parked_once_as_unretryable(
    harness: Harness, nats_url: str
) -> None:
    rt = harness.runtime

    async def handled(conn: AsyncConnection, event: PetitionSubmitted) -> None:
        await conn.execute(insert(effects).values(event_id=str(event.event_id)))

    rt.consumers.add(PetitionSubmitted, handled)
    await rt.broker.start()
    await ensure_stream(rt.broker)
    nc = await connect_nats(nats_url)
    await nc.jetstream().publish("petitions.nonsense.v9", b"{}", headers={"Nats-Msg-Id": "n1"})
    await nc.close()
    await publish(nats_url, submitted())

    async def after_it() -> int:
        return await harness.count(effects)

    await eventually(after_it, what="the next event handled")
    [row] = await list_dead_letters(rt.engine, tables)
    assert row["subject"] == "petitions.nonsense.v9"
    assert "unknown subject" in row["error"]
    assert not retryable(row)
    with pytest.raises(Unretryable):
        await rt.consumers.retry_dead_letter(int(row["id"]))


async def test_the_stream_keeps_events_for_the_configured_age_and_size(
    harness: Harness, nats_url: str
) -> None:
    """Limits come from settings; a stream made earlier without them is brought to them, and a
    full stream refuses new events (they stay in the outbox) instead of dropping unread ones."""
    rt = harness.runtime
    nc = await connect_nats(nats_url)
    js = nc.jetstream()
    try:
        # An older definition, without limits, as a stream made before them would be.
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(PETITIONS_STREAM)
        await js.add_stream(name=PETITIONS_STREAM, subjects=["petitions.>"], duplicate_window=7200)
        limits = CommonSettings(
            nats_url=nats_url, stream_max_age_days=2, stream_max_bytes=1024 * 1024
        ).stream_limits
        await rt.broker.start()
        await ensure_stream(rt.broker, limits)
        info = await js.stream_info(PETITIONS_STREAM)
        assert info.config.max_age == 2 * 24 * 3600
        assert info.config.max_bytes == 1024 * 1024
        assert info.config.discard == DiscardPolicy.NEW
        # Fill it: the relay's rows past the limit stay unpublished, with the server's reason.
        big = "x" * 200_000
        events = [submitted(description=big) for _ in range(8)]
        async with rt.engine.begin() as conn:
            await add_to_outbox(conn, tables.outbox, *events)
        await rt.relay.publish_pending()
        info = await js.stream_info(PETITIONS_STREAM)
        assert info.state.bytes <= 1024 * 1024
        assert 0 < await rt.relay.backlog() < 8
        async with rt.engine.connect() as conn:
            errors = (
                await conn.execute(
                    select(tables.outbox.c.last_error).where(tables.outbox.c.published_at.is_(None))
                )
            ).scalars()
            assert all(e and "maximum bytes" in e for e in errors)
    finally:
        await nc.close()
