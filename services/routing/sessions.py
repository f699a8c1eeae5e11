"""Staff sessions: a sign-in opens one; it mints short-lived access tokens until it expires or
is revoked.

The session is a row in routing's database with a hash of its refresh token (the token is
`<session id>.<secret>`, given once to the client). Every access token names its session
(`sid`), so revoking the row ends all of them: routing reads the row on each request, and the
other services learn of it from the `petitions_sessions` bucket, where the announcer writes
each revocation (at once for a sign-out, within a second for a change made to the database
by an organisation import from another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import structlog
from nats.js.kv import KeyValue
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.routing import models
from services.routing.signin import staff_of
from shared.auth import MAX_ACCESS_TTL, Staff, issue_token
from shared.revocations import KEEP, revocation_value, sessions_bucket
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

RevocationReason = str  # signed_out | deactivated | role_changed | password_changed


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(secret: str) -> str:
    # The secret is 256 random bits: a plain hash is enough, nobody can guess it to match.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    """What a sign-in or a refresh gives the client."""

    staff: Staff
    access_token: str
    access_ttl: timedelta
    refresh_token: str
    expires_at: datetime


async def revoke_member_sessions(
    conn: AsyncConnection,
    member_ids: Collection[str],
    *,
    reason: RevocationReason,
    keep: str | None = None,
) -> int:
    """End every open session of these members but `keep` (the one a password was just
    changed from), in the caller's transaction (the announcer tells the other services once
    it commits)."""
    if not member_ids:
        return 0
    s = models.staff_sessions
    where: list[ColumnElement[bool]] = [
        s.c.member_id.in_(list(member_ids)),
        s.c.revoked_at.is_(None),
    ]
    if keep is not None:
        where.append(s.c.id != keep)
    result = await conn.execute(
        update(s).where(*where).values(revoked_at=_now(), revoked_reason=reason)
    )
    return int(result.rowcount or 0)


async def end_sessions(engine: AsyncEngine, *, username: str | None) -> int:
    """End the open sessions of one person (by username) or, with None, of everyone: after a
    secret key that may have leaked, say. Answers how many ended."""
    s, m = models.staff_sessions, models.members
    where = [s.c.revoked_at.is_(None)]
    if username is not None:
        where.append(
            s.c.member_id.in_(select(m.c.id).where(m.c.username == username.strip().lower()))
        )
    async with engine.begin() as conn:
        result = await conn.execute(
            update(s).where(*where).values(revoked_at=_now(), revoked_reason="ended")
        )
    return int(result.rowcount or 0)


class Sessions:
    """Opens, refreshes, checks and ends staff sessions."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        secret: Callable[[], str],
        announcer: RevocationAnnouncer,
        access_ttl: timedelta = MAX_ACCESS_TTL,
        session_ttl: timedelta = timedelta(hours=12),
    ) -> None:
        self.engine = engine
        self.secret = secret
        self.announcer = announcer
        self.access_ttl = access_ttl
        self.session_ttl = session_ttl

    def _issue(self, staff: Staff, session_id: str, secret: str, expires_at: datetime) -> Issued:
        staff = replace(staff, session_id=session_id)
        return Issued(
            staff=staff,
            access_token=issue_token(staff, secret=self.secret(), ttl=self.access_ttl),
            access_ttl=self.access_ttl,
            refresh_token=f"{session_id}.{secret}",
            expires_at=expires_at,
        )

    async def open(self, staff: Staff) -> Issued:
        """A new session for someone who just proved who they are."""
        assert staff.member_id is not None
        s = models.staff_sessions
        session_id, secret, now = uuid.uuid4().hex, secrets.token_urlsafe(32), _now()
        expires_at = now + self.session_ttl
        async with self.engine.begin() as conn:
            # A person's long-expired sessions go as they sign in again.
            await conn.execute(
                s.delete().where(
                    s.c.member_id == staff.member_id, s.c.expires_at < now - timedelta(days=1)
                )
            )
            await conn.execute(
                s.insert().values(
                    id=session_id,
                    member_id=staff.member_id,
                    refresh_hash=_digest(secret),
                    created_at=now,
                    refreshed_at=now,
                    expires_at=expires_at,
                )
            )
        return self._issue(staff, session_id, secret, expires_at)

    async def refresh(self, refresh_token: str) -> Issued | None:
        """A new access token from a live session, saying who the person is *now*; None for
        an unknown, expired or revoked session or a deactivated member."""
        session_id, _, secret = refresh_token.partition(".")
        if not session_id or not secret:
            return None
        s, m, u = models.staff_sessions, models.members, models.units
        now = _now()
        async with self.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(s, m.c.active)
                        .join(m, m.c.id == s.c.member_id)
                        .where(s.c.id == session_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None or not hmac.compare_digest(row["refresh_hash"], _digest(secret)):
                return None
            if row["revoked_at"] is not None or row["expires_at"] <= now or not row["active"]:
                return None
            member = (
                (await conn.execute(select(m).where(m.c.id == row["member_id"]))).mappings().one()
            )
            parents = {r.id: r.parent_id for r in (await conn.execute(select(u))).all()}
            await conn.execute(update(s).where(s.c.id == session_id).values(refreshed_at=now))
        return self._issue(staff_of(member, parents), session_id, secret, row["expires_at"])

    async def is_open(self, staff: Staff) -> bool:
        """Whether the session a valid access token names is still open (routing's check)."""
        s = models.staff_sessions
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(s.c.revoked_at, s.c.expires_at).where(s.c.id == staff.session_id)
                )
            ).first()
        return row is not None and row.revoked_at is None and row.expires_at > _now()

    async def sign_out(self, session_id: str) -> None:
        """End the session; every service refuses its tokens once this returns (unless the bus
        is down: then the announcer tells them when it is back)."""
        s = models.staff_sessions
        async with self.engine.begin() as conn:
            await conn.execute(
                update(s)
                .where(s.c.id == session_id, s.c.revoked_at.is_(None))
                .values(revoked_at=_now(), revoked_reason="signed_out")
            )
        await self.announcer.announce_now()


async def announce_revocations(engine: AsyncEngine, kv: KeyValue) -> int:
    """Write the revocations not yet announced to the bucket, then mark them announced."""
    s = models.staff_sessions
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(s.c.id, s.c.revoked_reason, s.c.revoked_at)
                .where(s.c.revoked_at.is_not(None), s.c.announced_at.is_(None))
                .order_by(s.c.revoked_at)
                .limit(500)
            )
        ).all()
    now = _now()
    for row in rows:
        # A revocation older than the bucket keeps them has no live token left.
        if now - row.revoked_at < KEEP:
            await kv.put(
                row.id, revocation_value(reason=row.revoked_reason or "", at=row.revoked_at)
            )
    if rows:
        async with engine.begin() as conn:
            await conn.execute(
                update(s).where(s.c.id.in_([r.id for r in rows])).values(announced_at=now)
            )
        log.info("sessions_revoked_announced", count=len(rows))
    return len(rows)


async def announce_from_outside(
    engine: AsyncEngine, servers: list[str], *, replicas: int = 1, **connect_options: Any
) -> int:
    """Announce pending revocations from a process without a broker (the organisation import
    command), so the services learn of them without waiting for routing's next look.
    `connect_options` are nats-py's (routing's credentials on an authenticated bus)."""
    nc = await nats.connect(
        servers,
        name="petitions-cli",
        connect_timeout=3,
        max_reconnect_attempts=0,
        **connect_options,
    )
    try:
        kv = await sessions_bucket(nc.jetstream(), replicas=replicas)
        return await announce_revocations(engine, kv)
    finally:
        await nc.close()


class RevocationAnnouncer:
    """Writes each revoked session to the `petitions_sessions` bucket, once, from whichever
    replica sees it first: right after a sign-out, and every `interval_s` for revocations
    written by others (an organisation import run from the command line)."""

    def __init__(self, engine: AsyncEngine, runtime: Runtime, *, interval_s: float = 1.0) -> None:
        self.engine = engine
        self.runtime = runtime
        self.interval_s = interval_s
        self._kv: KeyValue | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def announce_now(self) -> int:
        """Announce what is pending; 0 (and later) while the bus is away."""
        if not self.runtime.started:
            return 0
        try:
            return await self._announce()
        except Exception as exc:
            log.warning("revocation_announce_failed", error=f"{type(exc).__name__}: {exc}")
            return 0

    async def _announce(self) -> int:
        async with self._lock:
            if self._kv is None:
                self._kv = await sessions_bucket(
                    self.runtime.broker.connection.jetstream(),
                    replicas=self.runtime.settings.stream_replicas,
                )
            return await announce_revocations(self.engine, self._kv)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="revocation-announcer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.announce_now()
            await asyncio.sleep(self.interval_s)
