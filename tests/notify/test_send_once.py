"""Notify sends a message at most once per idempotency key across replicas: two notify
processes' delivery workers on one database and a real webhook receiver slower than the lease;
and a worker stopped in the middle of a send, whose successor sends again only with the same
delivery id and says so."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.notify.delivery import RESENT_IN_DOUBT
from shared.events import CaseAssigned
from tests.support import eventually, free_port

from .conftest import make_config, make_settings, running_notify, webhook_receiver


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


async def test_a_send_cut_short_is_sent_again_only_with_the_same_delivery_id_and_noted(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """The worker stops (a crash, a deploy) while the receiver is still answering: whether the
    message arrived is unknown. The next worker sends it again with the same delivery id, so
    the receiver can drop the repeat, and the row says it was sent in doubt."""
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

            async def sent() -> list[dict[str, Any]]:
                return await second.notifications(status="sent", channel="city")

            [row] = await eventually(sent, timeout=30, what="sent again by the next worker")
            assert row["last_error"] == RESENT_IN_DOUBT
        assert receiver.hits == 2
        assert len({r["_delivery"] for r in receiver.received}) == 1
        assert len({r["id"] for r in receiver.received}) == 1
