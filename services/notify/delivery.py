"""The delivery worker: claims due notifications in batches, looks up the addresses (residents'
from intake, in one request for the whole batch; a member's from routing when the event did not
carry it) just before sending, sends with bounded concurrency, and records the outcome.

- A batch (same recipient, channel and template, due together) leaves as one message.
- Quiet hours hold a message, without spending an attempt, until they end.
- A look-up that finds no directory (intake or routing down or too slow) is not the message's
  fault: it is retried within a second or two, then with backoff, and spends no attempt.
- A failure worth retrying is retried with exponential backoff and jitter, up to
  `delivery_max_attempts`; then, or at once for a permanent refusal, the notification is parked
  as `dead` (listed for administrators, with a retry action) and the recipient's next channel is
  queued. A person with no address on a channel is tried on the next one.
- A resident intake does not know, who was erased, or who asked for no updates is never
  contacted: the notification is `skipped` and no other channel is tried.

At most once per idempotency key across replicas, as far as the outside world allows:
- A claim leases its rows for `delivery_lease_s` under a fresh token (`lease_token`); only the
  claim holding the token records an outcome, so a worker whose lease ran out cannot mark sent,
  failed or dead what another worker now holds.
- One message at a time: just before its send, the worker checks it still holds every row of
  the message, renews the lease and records `send_started_at` (one small transaction by
  primary key; a message it no longer holds entirely is not sent), and just after the send it
  records the outcome, which clears `send_started_at`. While sends last, the round's lease is
  renewed every third of its length, so a slow channel never lets a second worker claim a
  message being sent. The window in which a send's outcome can be lost is one SMTP or webhook
  transaction.
- An outcome the database cannot take (it is down) is kept in memory and recorded with
  back-off once it is back; the message is never sent again for it, and the round (so the
  worker's next claim) waits.
- A send whose receiver got the whole message and never answered (an SMTP timeout after the
  content, a webhook's lost response: `MaybeDelivered`) is set aside as `in_doubt` too.
- On a normal stop, sends under way get `delivery_stop_grace_s` to finish and be recorded;
  messages claimed and not begun are handed back at once.
- A claim that finds `send_started_at` set knows an earlier send began and was never recorded
  (its worker was killed): the message may have left. It is not sent again on its own: it is
  set aside as `in_doubt`, logged (`notification_send_in_doubt`) and listed for a person, who
  can retry it by hand (it then leaves with the same Message-ID or webhook delivery id).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.db import is_database_outage, is_sqlite
from shared.worker import Worker

from .channels import (
    Channel,
    MaybeDelivered,
    Outgoing,
    PermanentDeliveryError,
    Recipient,
    Unreachable,
    render,
)
from .directory import Contact, Directory, DirectoryUnavailable
from .models import notifications, petition_facts
from .notifications import (
    LINK_RECOVERY,
    PlannedNotification,
    batched_template,
    quiet_until,
    retry_delay,
)
from .queueing import Queueing, queue_on_channel
from .settings import Settings

log = structlog.get_logger(__name__)

RETRYABLE = ("queued", "failed")
IN_DOUBT = "in_doubt"
# An outcome may be recorded on a row set aside as in doubt while its worker waited for the
# database: the same lease token proves it is the send that began.
RECORDABLE = (*RETRYABLE, IN_DOUBT)
RECIPIENT_KINDS = ("member", "resident")
Row = Mapping[str, Any]
# Recorded on a message whose send began and was never recorded: it is not sent again on its
# own; a person checks with the recipient and retries it by hand if it did not arrive.
IN_DOUBT_NOTE = (
    "có thể đã gửi: lần gửi đã bắt đầu nhưng không ghi được kết quả; không tự gửi lại, kiểm tra "
    "rồi gửi lại thủ công nếu cần / may have been sent: a send began but its outcome was never "
    "recorded; not resent automatically, check and retry by hand if needed"
)
# Back-off while an outcome waits for the database to be back.
OUTCOME_RETRY_S = 0.2
OUTCOME_RETRY_MAX_S = 5.0
Record = Callable[[], Awaitable[None]]


def _held(row: Row) -> Any:
    """The condition under which a row is still held by the claim that read it."""
    n = notifications
    return and_(
        n.c.id == row["id"], n.c.status.in_(RECORDABLE), n.c.lease_token == row["lease_token"]
    )


class _LeaseLost(Exception):
    """This claim no longer holds every row of a message."""


class Skip(Exception):
    """Nobody to send to, by design: the resident is unknown, erased, or asked for no updates."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Prepared:
    message: Outgoing
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Lookups:
    """What a round asked once for all its messages: the references petitions are known by,
    and residents' contacts (one bulk request to intake), or why intake could not be asked."""

    references: Mapping[str, tuple[str, str | None]]
    contacts: Mapping[str, Contact | None] = field(default_factory=dict)
    contacts_error: str | None = None

    def contact(self, petition_id: str) -> Contact | None:
        """The resident's contact; raises `DirectoryUnavailable` when intake did not answer."""
        if self.contacts_error is not None:
            raise DirectoryUnavailable(self.contacts_error)
        return self.contacts.get(petition_id)


class DeliveryWorker:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        directory: Directory,
        settings: Settings,
        queueing: Queueing,
        channels: Mapping[str, Channel],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._engine = engine
        self._directory = directory
        self._settings = settings
        self._q = queueing
        self._clock: Clock = queueing.clock
        self.channels = dict(channels)
        self._rand = rand
        self._batch_size = settings.delivery_batch_size
        self._lease = timedelta(seconds=settings.delivery_lease_s)
        # One limit for both loops: at most this many sends at once.
        self._sending = asyncio.Semaphore(settings.delivery_concurrency)
        self._stopping = False
        # Residents' messages wait for intake's answer, members' do not: each kind has its own
        # loop, so a slow intake never holds up a member's message.
        self._loops = [
            Worker(f"notify-delivery-{kind}", self._step(kind), idle_s=settings.delivery_poll_s)
            for kind in RECIPIENT_KINDS
        ]

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        for loop in self._loops:
            loop.wake()

    @property
    def running(self) -> bool:
        return all(loop.running for loop in self._loops)

    def start(self) -> None:
        for loop in self._loops:
            loop.start()

    async def stop(self) -> None:
        """Stop claiming; let the sends under way finish and be recorded (for up to
        `delivery_stop_grace_s`), hand back what was claimed and not begun, then end."""
        self._stopping = True
        grace = self._settings.delivery_stop_grace_s
        await asyncio.gather(*(loop.stop(grace_s=grace) for loop in self._loops))
        self._stopping = False

    def _step(self, kind: str) -> Callable[[], Awaitable[bool]]:
        async def step() -> bool:
            return await self._round(kind) >= self._batch_size

        return step

    async def deliver_due(self) -> int:
        """One round for members and one for residents; returns rows tried."""
        return sum([await self._round(kind) for kind in RECIPIENT_KINDS])

    async def _round(self, kind: str) -> int:
        """Claim the due notifications for `kind` (one round), ask for what they need in one
        go, send at most `delivery_concurrency` at once, each message marked just before its
        send and its outcome recorded just after; returns rows tried."""
        claimed, references = await self._claim(kind)
        if not claimed:
            return 0
        started = time.monotonic()
        lookups = await self._lookups(kind, claimed, references)

        not_begun: list[Row] = []

        async def one(group: list[Row]) -> None:
            async with self._sending:
                if self._stopping:
                    not_begun.extend(group)
                else:
                    await self._deliver(group, lookups)

        async with self._renewing(claimed[0][0]["lease_token"]):
            await asyncio.gather(*(one(group) for group in claimed))
        if not_begun:
            await self._hand_back(not_begun)
        rows = sum(len(g) for g in claimed)
        log.debug(
            "delivery_round", kind=kind, rows=rows, seconds=round(time.monotonic() - started, 3)
        )
        return rows

    async def _claim(self, kind: str) -> tuple[list[list[Row]], dict[str, tuple[str, str | None]]]:
        """Take due rows for one kind of recipient by pushing their next attempt a lease away,
        so the send happens outside any transaction and a dead worker's rows come back on
        their own. A batch is claimed whole. Rows in their recipient's quiet hours are put back
        until the hours end. PostgreSQL replicas skip each other's locked rows; SQLite has one
        writer. Also returns the references of the petitions concerned, read in the same
        transaction (on a busy SQLite every transaction waits its turn)."""
        n = notifications
        now = self._clock.now()
        due = and_(
            n.c.status.in_(RETRYABLE), n.c.next_attempt_at <= now, n.c.recipient_kind == kind
        )
        query = select(n).where(due).order_by(n.c.next_attempt_at, n.c.id).limit(self._batch_size)
        locking = not is_sqlite(self._engine)
        if locking:
            query = query.with_for_update(skip_locked=True)
        lease_until = now + timedelta(seconds=self._settings.delivery_lease_s)
        token = uuid.uuid4().hex
        async with self._engine.begin() as conn:
            rows: list[Row] = [dict(r) for r in (await conn.execute(query)).mappings().all()]
            keys = {r["batch_key"] for r in rows if r["batch_key"]}
            if keys:
                seen = {r["id"] for r in rows}
                rest = select(n).where(and_(due, n.c.batch_key.in_(keys), n.c.id.not_in(seen)))
                if locking:
                    rest = rest.with_for_update(skip_locked=True)
                rows += [dict(r) for r in (await conn.execute(rest)).mappings().all()]
            if not rows:
                return [], {}
            claimed = await self._sort_out(conn, rows, now, token)
            if claimed:
                await conn.execute(
                    update(n)
                    .where(n.c.id.in_([r["id"] for r in claimed]))
                    .values(
                        attempts=n.c.attempts + 1,
                        next_attempt_at=lease_until,
                        hold_reason=None,
                        lease_token=token,
                    )
                )
            references = await _references(conn, claimed)
        groups: dict[Any, list[Row]] = {}
        for row in claimed:
            groups.setdefault(row["batch_key"] or ("single", row["id"]), []).append(row)
        return [sorted(g, key=lambda r: r["id"]) for g in groups.values()], references

    async def _sort_out(
        self, conn: AsyncConnection, rows: Sequence[Row], now: datetime, token: str
    ) -> list[Row]:
        """The rows to send now. A row whose send began and was never recorded may have left:
        it is set aside as `in_doubt` for a person, never sent again on its own. A row in its
        recipient's quiet hours is put back until they end."""
        n = notifications
        claimed: list[Row] = []
        for row in rows:
            if row["send_started_at"] is not None:
                await conn.execute(
                    update(n)
                    .where(n.c.id == row["id"])
                    .values(status=IN_DOUBT, last_error=IN_DOUBT_NOTE, hold_reason=None)
                )
                log.warning(
                    "notification_send_in_doubt",
                    notification_id=row["id"],
                    petition_id=row["petition_id"],
                    channel=row["channel"],
                    resent=False,
                )
            elif (held := self._quiet_until(row, now)) is not None:
                await conn.execute(
                    update(n)
                    .where(n.c.id == row["id"])
                    .values(next_attempt_at=held, hold_reason="quiet_hours")
                )
            else:
                claimed.append({**row, "attempts": row["attempts"] + 1, "lease_token": token})
        return claimed

    def _quiet_until(self, row: Row, now: datetime) -> datetime | None:
        config = self._q.config
        quiet = config.quiet_hours_for(row["recipient_kind"], row["recipient_ref"])
        return quiet_until(now, quiet, row["channel"], config.zone)

    async def _deliver(self, group: list[Row], lookups: Lookups) -> None:
        """Send one message (a group leaves as one) and record its outcome at once; an outcome
        the database cannot take now is kept and recorded when it is back, never sent again."""
        first = group[0]
        bound = log.bind(
            notification_ids=[r["id"] for r in group],
            petition_id=first["petition_id"],
            template=first["template"],
            channel=first["channel"],
            recipient_kind=first["recipient_kind"],
            attempt=first["attempts"],
        )
        record = await self._attempt(group, lookups, bound)
        if record is None:
            return
        delay = OUTCOME_RETRY_S
        while True:
            try:
                await record()
                return
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                bound.warning(
                    "notification_outcome_waits_for_database",
                    retry_s=delay,
                    error=type(exc).__name__,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, OUTCOME_RETRY_MAX_S)

    async def _attempt(self, group: list[Row], lookups: Lookups, bound: Any) -> Record | None:
        """Prepare, mark and send one message; returns how to record what happened, or None
        when it was not sent and nothing is to be recorded (the lease was lost, or the
        database could not take the mark)."""
        first = group[0]
        try:
            channel = self.channels.get(first["channel"])
            if channel is None:
                raise PermanentDeliveryError(
                    f"kênh chưa cấu hình / channel '{first['channel']}' is not configured"
                )
            prepared = await self._prepare(group, lookups)
        except Exception as exc:
            return self._outcome_of(exc, group, (), bound)
        if not await self._begin_send(group, bound):
            return None
        try:
            await channel.send(prepared.message)
        except Exception as exc:
            return self._outcome_of(exc, group, prepared.secrets, bound)
        bound.info("notification_sent", messages=len(group))
        return partial(self._finish, group, "sent", None)

    def _outcome_of(
        self, exc: Exception, group: list[Row], secrets: Sequence[str], bound: Any
    ) -> Record:
        """How to record a message that could not be sent, by the reason."""
        if isinstance(exc, DirectoryUnavailable):
            return partial(self._lookup_failed, group, str(exc), bound)
        if isinstance(exc, Skip):
            bound.info("notification_skipped", reason=exc.reason)
            return partial(self._finish, group, "skipped", exc.reason)
        if isinstance(exc, Unreachable):
            bound.info("notification_unreachable", reason=str(exc))
            return partial(self._give_up, group, status="skipped", error=str(exc))
        if isinstance(exc, MaybeDelivered):
            # At most once: a message that may have arrived waits for a person.
            bound.warning("notification_send_in_doubt", reason=str(exc), resent=False)
            return partial(self._finish, group, IN_DOUBT, f"{IN_DOUBT_NOTE} ({exc})")
        if isinstance(exc, PermanentDeliveryError):
            bound.error("notification_refused", error=_scrub(str(exc), secrets))
            return partial(self._give_up, group, status="dead", error=_scrub(str(exc), secrets))
        # The delivery log is shown to staff; a resident's address never goes in it.
        return partial(self._failed, group, _scrub(f"{type(exc).__name__}: {exc}", secrets), bound)

    async def _lookups(
        self, kind: str, groups: list[list[Row]], references: dict[str, tuple[str, str | None]]
    ) -> Lookups:
        """Residents' contacts for the whole round, in one request to intake."""
        if kind != "resident":
            return Lookups(references=references)
        try:
            contacts = await self._directory.contacts(
                sorted({g[0]["petition_id"] for g in groups}),
                recover_links=sorted(
                    {g[0]["petition_id"] for g in groups if g[0]["template"] == LINK_RECOVERY}
                ),
            )
        except DirectoryUnavailable as exc:
            return Lookups(references=references, contacts_error=str(exc))
        return Lookups(references=references, contacts=contacts)

    async def _begin_send(self, group: list[Row], bound: Any) -> bool:
        """Record the start of one message's send and renew its lease, only if this claim
        still holds every row of it (one small transaction, by primary key); otherwise, or when
        the database cannot take it, the message is not sent now."""
        n = notifications
        now = self._clock.now()
        ids = [r["id"] for r in group]
        mine = and_(
            n.c.id.in_(ids),
            n.c.lease_token == group[0]["lease_token"],
            n.c.status.in_(RETRYABLE),
            n.c.send_started_at.is_(None),
        )
        try:
            async with self._engine.begin() as conn:
                changed = await conn.execute(
                    update(n)
                    .where(mine)
                    .values(send_started_at=now, next_attempt_at=now + self._lease)
                )
                if changed.rowcount != len(ids):
                    raise _LeaseLost
        except _LeaseLost:
            bound.warning("notification_lease_lost", sent=False)
            return False
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            bound.warning("notification_not_sent_database_down", error=type(exc).__name__)
            return False
        return True

    async def _hand_back(self, rows: Sequence[Row]) -> None:
        """Stopping: rows this claim took and never began to send are due again at once (their
        attempt given back), for another worker or the next start, not after the lease."""
        n = notifications
        try:
            async with self._engine.begin() as conn:
                handed = await conn.execute(
                    update(n)
                    .where(
                        and_(
                            n.c.id.in_([r["id"] for r in rows]),
                            n.c.lease_token == rows[0]["lease_token"],
                            n.c.status.in_(RETRYABLE),
                            n.c.send_started_at.is_(None),
                        )
                    )
                    .values(next_attempt_at=self._clock.now(), attempts=n.c.attempts - 1)
                )
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # They come back on their own when their lease runs out.
            log.warning("notifications_not_handed_back", rows=len(rows), error=type(exc).__name__)
            return
        log.info("notifications_handed_back", rows=handed.rowcount)

    @asynccontextmanager
    async def _renewing(self, token: str) -> AsyncIterator[None]:
        """Renew the round's lease every third of its length while its sends last, so a slow
        channel never lets another worker claim a message being sent."""
        n = notifications

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._settings.delivery_lease_s / 3)
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(
                            update(n)
                            .where(and_(n.c.lease_token == token, n.c.status.in_(RETRYABLE)))
                            .values(next_attempt_at=self._clock.now() + self._lease)
                        )
                except Exception as exc:
                    # Nobody else can claim while the database is down: try again later.
                    if not is_database_outage(exc):
                        raise
                    log.warning("notification_lease_renewal_failed", error=type(exc).__name__)

        renewing = asyncio.create_task(renew(), name="notify-lease-renewal")
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _prepare(self, group: list[Row], lookups: Lookups) -> Prepared:
        first = group[0]
        contexts = [json.loads(r["context"]) for r in group]
        for row, ctx in zip(group, contexts, strict=True):
            if row["petition_id"] in lookups.references:
                ctx["reference"], ctx["title"] = lookups.references[row["petition_id"]]
        if first["recipient_kind"] == "member":
            recipient = await self._member(first, contexts[0])
            secrets: tuple[str, ...] = tuple(a for a in (recipient.email,) if a)
        else:
            contact = lookups.contact(first["petition_id"])
            if contact is None:
                raise Skip(
                    "không liên lạc: intake không biết hoặc đã xóa dữ liệu / "
                    "not to be contacted: unknown to intake or erased"
                )
            recovery = contact.recovery if first["template"] == LINK_RECOVERY else None
            if first["template"] == LINK_RECOVERY and recovery is None:
                raise Skip("không còn yêu cầu gửi lại liên kết / no recent request for the link")
            if recovery is None and not contact.wants_updates:
                raise Skip("người dân không đăng ký nhận tin / resident asked for no updates")
            recipient = Recipient(
                kind="resident",
                ref=first["recipient_ref"],
                name=contact.name,
                # A recovered link goes only to the contact the resident gave when asking.
                email=recovery.email if recovery else contact.email,
                phone=recovery.phone if recovery else contact.phone,
                language=contact.language,
            )
            link = recovery.tracking_url if recovery else contact.tracking_url
            # The link carries a tracking token: no error message keeps it either.
            secrets = tuple(
                a
                for a in (contact.email, contact.phone, contact.name, contact.tracking_url, link)
                if a
            )
            for ctx in contexts:
                ctx["link"] = link or self._settings.intake_url
        for ctx in contexts:
            ctx["recipient_name"] = recipient.name
        template = batched_template(first["template"], len(group))
        context = contexts[0] if len(group) == 1 else {**contexts[0], "items": contexts}
        content = render(self._q.templates, template, context)
        keys = sorted(r["idempotency_key"] for r in group)
        key = (
            keys[0]
            if len(keys) == 1
            else "batch:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()
        )
        references = tuple(dict.fromkeys(str(c.get("reference")) for c in contexts))
        message = Outgoing(
            key=key,
            name=f"{first['id']:08d}-{template}",
            recipient=recipient,
            content=content,
            petition_id=first["petition_id"],
            references=references,
        )
        return Prepared(message=message, secrets=secrets)

    async def _member(self, row: Row, context: Mapping[str, Any]) -> Recipient:
        """A member's name and work address: from the event when it carried them (an empty
        address means "has none"), else from routing."""
        address = row["recipient_address"]
        name = context.get("recipient_name")
        if address is None:
            found = await self._directory.members(member_ids=[row["recipient_ref"]])
            if not found:
                raise Skip("routing không biết thành viên này / routing does not know this member")
            address, name = found[0].email or "", found[0].name
        return Recipient(kind="member", ref=row["recipient_ref"], name=name, email=address or None)

    async def _finish(self, group: Sequence[Row], status: str, error: str | None) -> None:
        """Record a message sent or skipped, only for rows this worker's claim still holds (a
        row set aside as in doubt meanwhile is still this claim's: its outcome is now known).
        A lost lease is logged: the new holder decides."""
        n = notifications
        now = self._clock.now()
        ids = [r["id"] for r in group]
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(n)
                .where(
                    and_(
                        n.c.id.in_(ids),
                        n.c.status.in_(RECORDABLE),
                        n.c.lease_token == group[0]["lease_token"],
                    )
                )
                .values(
                    status=status,
                    last_error=error[:2000] if error else None,
                    sent_at=now if status == "sent" else None,
                    lookup_failures=0,
                    send_started_at=None,
                )
            )
        if lost := len(ids) - changed.rowcount:
            log.warning("notification_outcome_after_lease_lost", rows=lost)

    async def _give_up(self, group: Sequence[Row], *, status: str, error: str) -> None:
        """This channel cannot deliver: record why and queue each row on the next channel."""
        n = notifications
        async with self._engine.begin() as conn:
            for row in group:
                fallbacks: list[str] = json.loads(row["fallbacks"] or "[]")
                note = error
                if fallbacks:
                    note = f"{error}; chuyển sang / falling back to {fallbacks[0]}"
                changed = await conn.execute(
                    update(n)
                    .where(_held(row))
                    .values(status=status, last_error=note[:2000], send_started_at=None)
                )
                if changed.rowcount and fallbacks:
                    await self._fall_back(conn, row, fallbacks)
        self.wake()

    async def _fall_back(self, conn: AsyncConnection, row: Row, fallbacks: list[str]) -> None:
        planned = PlannedNotification(
            recipient_kind=row["recipient_kind"],
            recipient_ref=row["recipient_ref"],
            template=row["template"],
            context={k: v for k, v in json.loads(row["context"]).items() if k != "recipient_name"},
            recipient_address=row["recipient_address"],
            recipient_name=json.loads(row["context"]).get("recipient_name"),
        )
        await queue_on_channel(
            conn,
            self._q,
            petition_id=row["petition_id"],
            transition=row["event_id"],
            planned=planned,
            channel=fallbacks[0],
            fallbacks=tuple(fallbacks[1:]),
            fallback_of=row["id"],
        )

    async def _lookup_failed(self, group: Sequence[Row], error: str, bound: Any) -> None:
        """The directory did not answer: try again soon, then back off, and give the attempt
        back, so that an intake restart or a burst never uses up a message's attempts."""
        failures = max(int(r["lookup_failures"]) for r in group) + 1
        delay = retry_delay(
            failures,
            base_s=self._settings.lookup_retry_s,
            max_s=self._settings.retry_max_s,
            rand=self._rand,
        )
        bound.warning("notification_lookup_retry", delay_s=round(delay, 2), error=error)
        n = notifications
        retry_at = self._clock.now() + timedelta(seconds=delay)
        async with self._engine.begin() as conn:
            for row in group:
                # Only the claim that made this attempt may give it back.
                await conn.execute(
                    update(n)
                    .where(_held(row))
                    .values(
                        status="failed",
                        attempts=n.c.attempts - 1,
                        lookup_failures=failures,
                        last_error=error[:2000],
                        next_attempt_at=retry_at,
                        send_started_at=None,
                    )
                )

    async def _failed(self, group: Sequence[Row], error: str, bound: Any) -> None:
        now = self._clock.now()
        exhausted = [r for r in group if r["attempts"] >= self._settings.delivery_max_attempts]
        retrying = [r for r in group if r not in exhausted]
        if exhausted:
            bound.error("notification_dead", error=error)
            await self._give_up(exhausted, status="dead", error=error)
        if not retrying:
            return
        # One delay for the whole group, so a batch stays together.
        delay = retry_delay(
            max(int(r["attempts"]) for r in retrying),
            base_s=self._settings.retry_base_s,
            max_s=self._settings.retry_max_s,
            rand=self._rand,
        )
        bound.warning("notification_retry", delay_s=round(delay, 2), error=error)
        n = notifications
        async with self._engine.begin() as conn:
            for row in retrying:
                # Only the claim that made this attempt may record its failure.
                await conn.execute(
                    update(n)
                    .where(_held(row))
                    .values(
                        status="failed",
                        last_error=error[:2000],
                        next_attempt_at=now + timedelta(seconds=delay),
                        send_started_at=None,
                    )
                )


async def _references(
    conn: AsyncConnection, rows: Sequence[Row]
) -> dict[str, tuple[str, str | None]]:
    """A message queued before the submission arrived names the petition by a short id;
    by send time the reference the resident was given is usually known."""
    ids = {r["petition_id"] for r in rows if r["petition_id"]}
    if not ids:
        return {}
    pf = petition_facts
    known = (
        await conn.execute(
            select(pf.c.petition_id, pf.c.reference, pf.c.title).where(pf.c.petition_id.in_(ids))
        )
    ).all()
    return {pid: (ref, title) for pid, ref, title in known if ref}


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "<recipient>")
    return text
