"""Notify sends a message at most once per idempotency key across replicas: two notify
processes' delivery workers on one database and a real webhook receiver slower than the lease;
a worker stopped in the middle of a send, whose successor sets the message aside as in doubt
instead of sending it again; and a database that cannot take a send's outcome, which is
recorded once it is back, never sent again."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from services.notify.delivery import IN_DOUBT_NOTE
from services.notify.models import notifications
from shared.events import CaseAssigned
from tests.support import eventually, free_port

from .conftest import make_config, make_settings, running_notify, token, webhook_receiver


def assigned(member: str) -> CaseAssigned:
    return CaseAssigned.new(
        producer="routing",
        petition_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        rung=0,
        unit_id="khom",
        member_id=member,
        member_username=member,
        member_name=member.title(),
        member_email=f"{member}@example.org",
        due_at=datetime.now(UTC) + timedelta(days=3),
    )


def city(port: int) -> Any:
    return make_config(
        webhooks={"city": {"url": f"http://127.0.0.1:{port}/hook"}},
        preferences={"members": ["city"]},
    )


async def test_two_replicas_and_a_channel_slower_than_the_lease_send_each_key_once(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    # The receiver answers after two and a half lease lengths: without the lease renewed
    # during the send, the other replica would claim the message again and send it twice.
    settings = make_settings(
        nats_url, database_url, tmp_path, delivery_lease_s=2.0, delivery_poll_s=0.02
    )
    events = [assigned(f"m-{n}") for n in range(3)]
    async with (
        webhook_receiver(port) as receiver,
        running_notify(settings, config=city(port)) as one,
        running_notify(settings, config=city(port)) as two,
    ):
        receiver.delay_s = 5.0
        for event in events:
            await one.publish(event)

        async def all_sent() -> bool:
            rows = await two.notifications(channel="city")
            return len(rows) == 3 and all(r["status"] == "sent" for r in rows)

        await eventually(all_sent, timeout=30, what="every message sent")
        # Both workers look again: nothing is due, nothing leaves twice.
        assert await one.app.state.delivery.deliver_due() == 0
        assert await two.app.state.delivery.deliver_due() == 0
        keys = [r["id"] for r in receiver.received]
        assert len(keys) == 3, keys
        assert len(set(keys)) == 3
        rows = await one.notifications(channel="city")
        assert all(r["attempts"] == 1 and r["last_error"] is None for r in rows)


async def test_a_send_cut_short_is_set_aside_in_doubt_not_resent_and_retried_by_hand_once(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """The worker stops (a crash, a deploy) while the receiver is still answering: whether the
    message arrived is unknown. The next worker does not send it again: it sets the row aside
    as in doubt, listed for administrators with a note; an administrator's retry sends it once
    more, with the same delivery id, so the receiver can drop the repeat."""
    port = free_port()
    # A stop's grace is shorter than the receiver's answer: the send is cut short.
    settings = make_settings(
        nats_url,
        database_url,
        tmp_path,
        delivery_lease_s=2.0,
        delivery_poll_s=0.02,
        delivery_stop_grace_s=0.2,
    )
    event = assigned("m-lan")
    async with webhook_receiver(port) as receiver:
        receiver.delay_s = 8.0
        async with running_notify(settings, config=city(port)) as first:
            await first.publish(event)

            async def arrived() -> bool:
                return receiver.hits == 1

            await eventually(arrived, what="the first send reached the receiver")
        receiver.delay_s = 0.0
        async with running_notify(settings, config=city(port)) as second:

            async def in_doubt() -> list[dict[str, Any]]:
                return await second.notifications(status="in_doubt", channel="city")

            [row] = await eventually(in_doubt, timeout=30, what="set aside as in doubt")
            assert row["last_error"] == IN_DOUBT_NOTE
            # Looked at again: nothing is due, nothing leaves a second time on its own.
            assert await second.app.state.delivery.deliver_due() == 0
            assert receiver.hits == 1
            retried = await second.http.post(
                f"/api/v1/notifications/{row['id']}/retry", headers=token("admin")
            )
            assert retried.status_code == 200, retried.text

            async def sent() -> list[dict[str, Any]]:
                return await second.notifications(status="sent", channel="city")

            [done] = await eventually(sent, timeout=30, what="sent after the retry by hand")
            assert done["id"] == row["id"]
            assert done["last_error"] is None
            assert await second.app.state.delivery.deliver_due() == 0
        assert receiver.hits == 2
        assert len({r["_delivery"] for r in receiver.received}) == 1
        assert len({r["id"] for r in receiver.received}) == 1


async def test_an_outcome_the_database_cannot_take_is_recorded_later_and_never_resent(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    """The send succeeds while another connection holds SQLite's write lock past the busy
    timeout (a real outage for notify): recording the outcome fails. The worker keeps it and
    records it once the lock is gone; the message is not sent again."""
    port = free_port()
    settings = make_settings(nats_url, sqlite_url, tmp_path, delivery_poll_s=0.02)
    path = sqlite_url.split(":///", 1)[1]
    lock = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    with structlog.testing.capture_logs() as logs:
        async with (
            webhook_receiver(port) as receiver,
            running_notify(settings, config=city(port)) as notify,
        ):
            receiver.gate = asyncio.Event()
            await notify.publish(assigned("m-hoa"))

            async def arrived() -> bool:
                return receiver.hits == 1

            await eventually(arrived, what="the send reached the receiver")
            await asyncio.to_thread(lock.execute, "BEGIN EXCLUSIVE")
            try:
                receiver.gate.set()

                async def outcome_refused() -> bool:
                    return any(
                        line["event"] == "notification_outcome_waits_for_database" for line in logs
                    )

                await eventually(outcome_refused, timeout=60, what="the outcome write failed")
                assert receiver.answered == 1
            finally:
                await asyncio.to_thread(lock.rollback)
                await asyncio.to_thread(lock.close)

            async def sent() -> list[dict[str, Any]]:
                return await notify.notifications(status="sent", channel="city")

            [row] = await eventually(sent, timeout=60, what="the outcome recorded")
            assert row["attempts"] == 1
            assert row["last_error"] is None
            assert await notify.app.state.delivery.deliver_due() == 0
        assert receiver.hits == 1


async def test_a_stop_lets_the_send_under_way_finish_and_hands_back_what_was_not_begun(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """A deploy stops notify while one message is with the receiver and two more are claimed
    behind it (one send at a time): the one under way finishes and is recorded as sent; the
    two not begun are handed back at once, their attempt given back, and the next start sends
    them, each once."""
    port = free_port()
    settings = make_settings(
        nats_url,
        database_url,
        tmp_path,
        delivery_poll_s=0.02,
        delivery_concurrency=1,
        delivery_stop_grace_s=10.0,
    )
    async with webhook_receiver(port) as receiver:
        receiver.delay_s = 1.5
        async with running_notify(settings, config=city(port)) as first:
            for n in range(3):
                await first.publish(assigned(f"m-{n}"))

            async def three_queued() -> bool:
                return len(await first.notifications(channel="city")) == 3

            await eventually(three_queued, what="three messages queued")

            async def arrived() -> bool:
                return receiver.hits == 1

            await eventually(arrived, what="the first send reached the receiver")
        # Stopped: the send under way was answered and recorded; the others wait, unsent.
        assert receiver.hits == 1
        assert receiver.answered == 1
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                city_rows = select(notifications).where(notifications.c.channel == "city")
                rows = (await conn.execute(city_rows)).mappings().all()
        finally:
            await engine.dispose()
        by_status = sorted((r["status"], r["attempts"], r["send_started_at"]) for r in rows)
        assert by_status == [("queued", 0, None), ("queued", 0, None), ("sent", 1, None)]
        # Due now, not a lease away.
        now = datetime.now(UTC).replace(tzinfo=None)
        assert all(
            r["next_attempt_at"].replace(tzinfo=None) <= now
            for r in rows
            if r["status"] == "queued"
        )
        receiver.delay_s = 0.0
        async with running_notify(settings, config=city(port)) as second:

            async def all_sent() -> bool:
                rows = await second.notifications(channel="city")
                return all(r["status"] == "sent" for r in rows)

            await eventually(all_sent, what="the two handed back sent after the restart")
            done = await second.notifications(channel="city")
            assert all(r["attempts"] == 1 for r in done)
        assert receiver.hits == 3
        assert len({r["id"] for r in receiver.received}) == 3


async def test_a_webhook_whose_answer_never_comes_is_set_aside_in_doubt(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """The receiver got the request and did not answer within the channel's timeout: it may
    have acted on it, so the message is not retried on its own."""
    port = free_port()
    settings = make_settings(nats_url, database_url, tmp_path, delivery_poll_s=0.02)
    config = make_config(
        webhooks={"city": {"url": f"http://127.0.0.1:{port}/hook", "timeout_s": 0.5}},
        preferences={"members": ["city"]},
    )
    async with (
        webhook_receiver(port) as receiver,
        running_notify(settings, config=config) as notify,
    ):
        receiver.delay_s = 3.0
        await notify.publish(assigned("m-binh"))

        async def in_doubt() -> list[dict[str, Any]]:
            return await notify.notifications(status="in_doubt", channel="city")

        [row] = await eventually(in_doubt, what="set aside as in doubt")
        assert row["last_error"].startswith(IN_DOUBT_NOTE)
        assert "ReadTimeout" in row["last_error"]
        await asyncio.sleep(1.0)
        assert await notify.app.state.delivery.deliver_due() == 0
        assert receiver.hits == 1


class SlowToAnswer:
    """An SMTP server that takes the whole message and answers the end of DATA too late."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received += 1
        await asyncio.sleep(3.0)
        return "250 Message accepted for delivery"


async def test_an_smtp_server_that_takes_the_message_and_never_answers_leaves_it_in_doubt(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(
        nats_url,
        database_url,
        tmp_path,
        delivery_poll_s=0.02,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_timeout_s=0.5,
    )
    handler = SlowToAnswer()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        async with running_notify(settings) as notify:
            await notify.publish(assigned("m-cuc"))

            async def in_doubt() -> list[dict[str, Any]]:
                return await notify.notifications(status="in_doubt", channel="email")

            [row] = await eventually(in_doubt, what="set aside as in doubt")
            assert "SMTPReadTimeoutError" in row["last_error"]
            await asyncio.sleep(1.0)
            assert await notify.app.state.delivery.deliver_due() == 0
            assert handler.received == 1
    finally:
        await asyncio.to_thread(controller.stop)
