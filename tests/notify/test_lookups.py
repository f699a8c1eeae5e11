"""Residents' contacts asked of intake once per claimed batch, sends with bounded concurrency,
and a directory that does not answer retried within seconds without spending an attempt."""

from __future__ import annotations

import asyncio
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from services.notify.channels import EmailChannel, MailboxTransport
from shared.events import PetitionSubmitted
from tests.support import eventually

from .conftest import fake_intake, make_settings, running_notify


def submitted(pid: uuid.UUID, ref: str) -> PetitionSubmitted:
    return PetitionSubmitted.new(
        producer="intake",
        petition_id=pid,
        reference=ref,
        unit_id="khom",
        category_id="roads",
        title=f"Đèn hỏng {ref}",
        description="d",
        wants_updates=True,
    )


def contact(n: int) -> dict[str, Any]:
    return {
        "found": True,
        "name": f"Cư dân {n}",
        "email": f"r{n}@example.org",
        "phone": None,
        "language": "vi",
        "wants_updates": True,
        "tracking_url": f"http://intake.test/track/{n}",
    }


class GatedTransport:
    """Writes to the mailbox once `gate` opens, counting how many sends wait at once."""

    def __init__(self, inner: MailboxTransport) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most = 0

    async def send(self, message: EmailMessage, *, name: str) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.gate.wait()
            await self.inner.send(message, name=name)
        finally:
            self.in_flight -= 1


async def test_a_batch_asks_intake_once_and_sends_a_bounded_number_at_once(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, database_url, tmp_path, delivery_concurrency=5)
    pids = [uuid.uuid4() for _ in range(12)]
    async with fake_intake(nats_url) as intake, running_notify(settings) as notify:
        worker = notify.app.state.delivery
        # Nothing leaves until every notification is queued: then one round takes them all.
        await worker.stop()
        transport = GatedTransport(MailboxTransport(settings.mailbox_dir))
        worker.channels["email"] = EmailChannel(
            transport,
            sender="Petitions <no-reply@petitions.local>",
            clock_now=notify.app.state.runtime.clock.now,
        )
        for n, pid in enumerate(pids):
            intake.contacts[str(pid)] = contact(n)
            await notify.publish(submitted(pid, f"PA-{n:04d}"))

        async def all_queued() -> bool:
            return len(await notify.notifications(status="queued", channel="email")) == 12

        await eventually(all_queued, what="twelve receipts queued")
        round_ = asyncio.create_task(worker.deliver_due())

        async def five_waiting() -> bool:
            return transport.in_flight == 5

        await eventually(five_waiting, what="five sends in flight")
        assert transport.most == 5
        transport.gate.set()
        assert await round_ == 12
        assert transport.most == 5
        assert len(notify.mailbox()) == 12
        # One request for the round, in the bulk form, naming each petition once.
        assert len(intake.requests) == 1
        assert sorted(intake.requests[0]["petition_ids"]) == sorted(str(p) for p in pids)
        sent = await notify.notifications(status="sent", channel="email")
        assert len(sent) == 12


async def test_a_directory_timeout_is_retried_within_seconds_without_spending_an_attempt(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    # Ordinary failures would wait 15–30 s; a look-up that timed out is retried after 1–2 s.
    settings = make_settings(
        nats_url,
        database_url,
        tmp_path,
        retry_base_s=30,
        retry_max_s=3600,
        lookup_retry_s=2.0,
        contact_lookup_timeout_s=0.3,
    )
    pid = uuid.uuid4()
    async with fake_intake(nats_url) as intake, running_notify(settings) as notify:
        intake.contacts[str(pid)] = contact(1)
        intake.unanswered = 1
        await notify.publish(submitted(pid, "PA-0001"))

        async def timed_out() -> list[dict[str, Any]]:
            return await notify.notifications(status="failed", channel="email")

        [failed] = await eventually(timed_out, what="the look-up timed out")
        assert failed["attempts"] == 0, "a directory timeout spends no attempt"
        assert "TimeoutError" in failed["last_error"]

        async def mailed() -> bool:
            return len(notify.mailbox()) == 1

        await eventually(mailed, timeout=8, what="the retry delivered within seconds")
        [row] = await notify.notifications(status="sent", channel="email")
        assert row["attempts"] == 1
        assert len(intake.requests) == 2
