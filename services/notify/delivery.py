"""The delivery worker: claims due notifications, asks intake for a resident's contact just
before sending, sends, and records the outcome; failures are retried with backoff, then parked.

At-least-once, made as close to once as the outside world allows: a notification is marked sent
in its own transaction right after the send succeeds. If the process dies between the two, the
claim's lease runs out and the message goes again. The embedded mailbox then overwrites the same
file; an SMTP receiver gets a second copy with the same `Message-ID` (derived from the
notification's idempotency key) and can drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import structlog
from faststream.nats import NatsBroker
from jinja2 import Environment
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.db import is_sqlite
from shared.streams import RPC_CONTACT_LOOKUP

from .channels import EmailChannel, build_message, render_email
from .models import notifications, timeline
from .notifications import message_id, retry_delay
from .settings import Settings

log = structlog.get_logger(__name__)

RETRYABLE = ("queued", "failed")


class ContactLookupError(Exception):
    """intake did not answer the contact look-up (down, slow, or a malformed reply)."""


class Skip(Exception):
    """Nothing to send, by design: the resident asked for no updates or left no address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Contact:
    name: str | None
    email: str | None
    wants_updates: bool
    tracking_url: str | None


def parse_contact(reply: Mapping[str, Any]) -> Contact | None:
    """intake's answer to a look-up; None when it knows no such petition."""
    if not reply.get("found"):
        return None
    return Contact(
        name=reply.get("name") or None,
        email=reply.get("email") or None,
        wants_updates=bool(reply.get("wants_updates")),
        tracking_url=reply.get("tracking_url") or None,
    )


class DeliveryWorker:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: NatsBroker,
        settings: Settings,
        clock: Clock,
        channel: EmailChannel,
        templates: Environment,
        rand: Callable[[], float] = random.random,
        batch_size: int = 20,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._settings = settings
        self._clock = clock
        self._channel = channel
        self._templates = templates
        self._rand = rand
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-delivery")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                handled = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery_round_failed")
                handled = 0
            if handled < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.delivery_poll_s)

    async def deliver_due(self) -> int:
        """Claim one batch of due notifications and try each; returns how many were tried."""
        rows = await self._claim()
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _claim(self) -> Sequence[Mapping[str, Any]]:
        """Take due rows for this worker by pushing their next attempt a lease away, so the
        send happens outside any transaction and a dead worker's rows come back on their own.
        PostgreSQL replicas skip each other's locked rows; SQLite has one writer."""
        n = notifications
        now = self._clock.now()
        query = (
            select(n)
            .where(and_(n.c.status.in_(RETRYABLE), n.c.next_attempt_at <= now))
            .order_by(n.c.next_attempt_at, n.c.id)
            .limit(self._batch_size)
        )
        if not is_sqlite(self._engine):
            query = query.with_for_update(skip_locked=True)
        lease_until = now + timedelta(seconds=self._settings.delivery_lease_s)
        async with self._engine.begin() as conn:
            rows = (await conn.execute(query)).mappings().all()
            if not rows:
                return []
            await conn.execute(
                update(n)
                .where(n.c.id.in_([r["id"] for r in rows]))
                .values(attempts=n.c.attempts + 1, next_attempt_at=lease_until)
            )
        return [{**r, "attempts": r["attempts"] + 1} for r in rows]

    async def _deliver(self, row: Mapping[str, Any]) -> None:
        bound = log.bind(
            notification_id=row["id"],
            petition_id=row["petition_id"],
            template=row["template"],
            recipient_kind=row["recipient_kind"],
            attempt=row["attempts"],
        )
        address: str | None = None
        try:
            message, address = await self._prepare(row)
            await self._channel.send(message, name=f"{row['id']:08d}-{row['template']}")
        except Skip as skip:
            await self._finish(row, status="skipped", error=skip.reason)
            bound.info("notification_skipped", reason=skip.reason)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if address:
                # The delivery log is shown to staff; a resident's address never goes in it.
                error = error.replace(address, "<recipient>")
            await self._failed(row, error, bound)
        else:
            await self._finish(row, status="sent", error=None)
            bound.info("notification_sent")

    async def _prepare(self, row: Mapping[str, Any]) -> tuple[EmailMessage, str]:
        """The message and its recipient, or `Skip` when there is nobody to send it to."""
        context: dict[str, Any] = json.loads(row["context"])
        context["reference"], context["title"] = await self._petition_reference(row["petition_id"])
        if row["recipient_kind"] == "member":
            address = row["recipient_address"]
            if not address:
                raise Skip("thành viên không có địa chỉ email / member has no email address")
            base = self._settings.routing_url.rstrip("/")
            context["case_url"] = f"{base}/cases/{context.get('case_id', '')}"
        else:
            contact = await self.lookup_contact(row["petition_id"])
            if contact is None:
                raise Skip("intake không biết phản ánh này / intake does not know this petition")
            if not contact.wants_updates:
                raise Skip("người dân không đăng ký nhận tin / resident asked for no updates")
            if not contact.email:
                raise Skip("người dân không để lại email / resident left no email address")
            address = contact.email
            context["resident_name"] = contact.name
            context["tracking_url"] = contact.tracking_url or self._settings.intake_url
        content = render_email(self._templates, row["template"], context)
        message = build_message(
            content,
            sender=self._settings.mail_from,
            to=address,
            message_id=message_id(row["idempotency_key"]),
            now=self._clock.now(),
        )
        return message, str(address)

    async def lookup_contact(self, petition_id: str) -> Contact | None:
        """Ask intake, the only keeper of residents' contacts; the answer serves this one send."""
        try:
            reply = await self._broker.request(
                {"petition_id": petition_id},
                RPC_CONTACT_LOOKUP,
                timeout=self._settings.contact_lookup_timeout_s,
            )
            data = json.loads(reply.body)
        except Exception as exc:
            raise ContactLookupError(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise ContactLookupError("reply is not a JSON object")
        return parse_contact(data)

    async def _petition_reference(self, petition_id: str) -> tuple[str, str | None]:
        """The reference the resident was given (and the title), from the submitted event on the
        timeline; a short id until that event has arrived."""
        t = timeline
        async with self._engine.connect() as conn:
            payload = await conn.scalar(
                select(t.c.payload)
                .where(and_(t.c.petition_id == petition_id, t.c.kind == "submitted"))
                .limit(1)
            )
        if payload:
            data = json.loads(payload)
            return str(data.get("reference") or petition_id[:8]), data.get("title")
        return petition_id[:8].upper(), None

    async def _finish(self, row: Mapping[str, Any], *, status: str, error: str | None) -> None:
        n = notifications
        async with self._engine.begin() as conn:
            await conn.execute(
                update(n)
                .where(and_(n.c.id == row["id"], n.c.status.in_(RETRYABLE)))
                .values(
                    status=status,
                    last_error=error,
                    sent_at=self._clock.now() if status == "sent" else None,
                )
            )

    async def _failed(self, row: Mapping[str, Any], error: str, bound: Any) -> None:
        n = notifications
        attempt = int(row["attempts"])
        now = self._clock.now()
        if attempt >= self._settings.delivery_max_attempts:
            values: dict[str, Any] = {"status": "dead", "last_error": error[:2000]}
            bound.error("notification_dead", error=error)
        else:
            delay = retry_delay(
                attempt,
                base_s=self._settings.retry_base_s,
                max_s=self._settings.retry_max_s,
                rand=self._rand,
            )
            values = {
                "status": "failed",
                "last_error": error[:2000],
                "next_attempt_at": now + timedelta(seconds=delay),
            }
            bound.warning("notification_retry", delay_s=round(delay, 2), error=error)
        async with self._engine.begin() as conn:
            # Only the claim that made this attempt may record its failure.
            await conn.execute(
                update(n)
                .where(
                    and_(
                        n.c.id == row["id"],
                        n.c.status.in_(RETRYABLE),
                        n.c.attempts == attempt,
                    )
                )
                .values(**values)
            )
