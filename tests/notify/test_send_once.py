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

from services.notify.delivery import IN_DOUBT_NOTE
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
    settings = make_settings(
        nats_url, database_url, tmp_path, delivery_lease_s=2.0, delivery_poll_s=0.02
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
