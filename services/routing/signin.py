"""Staff sign-in: a username and password give the person, with the units they may see.

Wrong credentials and too many recent failures are refused alike for every username, and a
wrong name costs as long as a wrong password (it is checked against a stand-in hash, made on
first use rather than when the module is imported). Failures are counted per username and
per client address in the database every replica shares, before any password is hashed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.errors import BadCredentials, TooManyAttempts
from services.routing.passwords import normalise
from shared.auth import Staff


@dataclass(frozen=True)
class ThrottleLimits:
    """At most `per_username` failed sign-ins for one username, from any address, and
    `per_address` from one client address, for any usernames, within `window`."""

    per_username: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Attempt:
    """A sign-in being checked: its rows count as failures until it succeeds."""

    username: str
    row_ids: tuple[int, ...]


class SignInThrottle:
    """Counts failed sign-ins in routing's database, so every replica enforces one limit.

    An attempt is written down *before* its password is hashed and counted with every other
    recent row of its keys: a try over the limit is refused without costing an argon2 hash,
    and concurrent tries on different replicas cannot all slip under the limit, since each
    sees the rows committed before its own count. A success deletes its row and the
    username's earlier failures; a failure leaves its rows to age out of the window. At most
    `max_hashing` passwords are hashed at once in a process (each hash takes 64 MiB).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        limits: ThrottleLimits | None = None,
        *,
        max_hashing: int = 2,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.limits = limits or ThrottleLimits()
        self.now = now
        self.hashing = asyncio.Semaphore(max_hashing)

    async def begin(self, username: str, client: str) -> Attempt:
        """Write the attempt down, or refuse it (`TooManyAttempts`, with when to retry)."""
        f = models.signin_failures
        limits = {f"user:{username}": self.limits.per_username}
        if client:
            limits[f"addr:{client}"[:200]] = self.limits.per_address
        now = self.now()
        cutoff = now - self.limits.window
        async with self.engine.begin() as conn:
            await conn.execute(delete(f).where(f.c.at <= cutoff))
            ids = []
            for key in limits:
                result = await conn.execute(insert(f).values(key=key, at=now))
                ids.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(f.c.id, f.c.key, f.c.at)
                    .where(f.c.key.in_(list(limits)), f.c.at > cutoff)
                    .order_by(f.c.at, f.c.id)
                )
            ).all()
        waits = []
        for key, limit in limits.items():
            earlier = [r.at for r in rows if r.key == key and r.id not in ids]
            if len(earlier) >= limit:
                # The window has room again when enough of the oldest failures age out.
                frees_at = earlier[len(earlier) - limit] + self.limits.window
                waits.append((frees_at - now).total_seconds())
        attempt = Attempt(username=username, row_ids=tuple(ids))
        if waits:
            await self._forget(attempt.row_ids)
            raise too_many_attempts(max(1, math.ceil(max(waits))))
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        f = models.signin_failures
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(f).where(
                    or_(f.c.id.in_(attempt.row_ids), f.c.key == f"user:{attempt.username}")
                )
            )

    async def _forget(self, row_ids: tuple[int, ...]) -> None:
        f = models.signin_failures
        async with self.engine.begin() as conn:
            await conn.execute(delete(f).where(f.c.id.in_(row_ids)))


def too_many_attempts(retry_after_s: int) -> TooManyAttempts:
    minutes = max(1, math.ceil(retry_after_s / 60))
    return TooManyAttempts(
        f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút.",
        f"Too many failed sign-ins. Please try again in {minutes} minutes.",
        retry_after=retry_after_s,
    )


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown (made once, on the first such sign-in)."""
    return _hasher().hash("not-a-password")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` (or its NFKC form, as new passwords are kept) matches the hash;
    an unknown person's check costs as long as a known one's."""
    return _verify(password_hash, password) or (
        normalise(password) != password and _verify(password_hash, normalise(password))
    )


def hash_password(password: str) -> str:
    """The argon2 hash a password is kept as (slow on purpose: call it in a thread)."""
    return _hasher().hash(password)


Outcome = Literal["success", "wrong_password", "throttled", "deactivated"]
# How long sign-in attempts stay in a person's history.
HISTORY_KEEP = timedelta(days=90)
USER_AGENT_MAX = 200


async def record_signin(
    engine: AsyncEngine,
    *,
    member_id: str,
    outcome: Outcome,
    address: str,
    user_agent: str,
    at: datetime | None = None,
) -> None:
    """One attempt in the person's history; rows older than 90 days go as this one comes."""
    h = models.signin_history
    at = at or datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(delete(h).where(h.c.at < at - HISTORY_KEEP))
        await conn.execute(
            insert(h).values(
                member_id=member_id,
                at=at,
                outcome=outcome,
                address=address[:100],
                user_agent=user_agent[:USER_AGENT_MAX],
            )
        )


def visible_units(
    parents: dict[str, str | None], role: str, unit_id: str | None
) -> tuple[str, ...]:
    """The units whose petitions a person may see: a leader's unit and every unit below it, a
    member's own unit; an administrator sees every unit without a list."""
    if role == "admin" or unit_id is None:
        return ()
    if role == "leader":
        below = [u for u in parents if _descends(u, unit_id, parents)]
        return tuple(sorted(below))
    return (unit_id,)


def _descends(unit: str, ancestor: str, parents: dict[str, str | None]) -> bool:
    seen: set[str] = set()
    current: str | None = unit
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


async def sign_in(
    engine: AsyncEngine,
    throttle: SignInThrottle,
    *,
    username: str,
    password: str,
    client: str,
    user_agent: str = "",
) -> Staff:
    """The active staff member behind a username and password (`BadCredentials` otherwise;
    `TooManyAttempts`, before any hashing, after too many recent failures for this username
    from anywhere or from this address). The person has no session yet (`sessions.open`).
    Every attempt for a known username goes into their sign-in history, whatever its outcome
    (the answer to a deactivated account stays the same as to a wrong password)."""
    username = username.strip().lower()
    m, u = models.members, models.units

    async def record(member_id: str, outcome: Outcome) -> None:
        await record_signin(
            engine, member_id=member_id, outcome=outcome, address=client, user_agent=user_agent
        )

    try:
        attempt = await throttle.begin(username, client)
    except TooManyAttempts:
        # One "throttled" line per person and address a window, however often a robot keeps
        # trying: the history stays readable and the refused path stays cheap.
        h = models.signin_history
        since = datetime.now(UTC) - throttle.limits.window
        async with engine.connect() as conn:
            known = await conn.scalar(select(m.c.id).where(m.c.username == username))
            noted = await conn.scalar(
                select(h.c.id)
                .where(
                    h.c.member_id == str(known),
                    h.c.address == client[:100],
                    h.c.outcome == "throttled",
                    h.c.at >= since,
                )
                .limit(1)
            )
        if known is not None and noted is None:
            await record(str(known), "throttled")
        raise
    async with engine.connect() as conn:
        row = (await conn.execute(select(m).where(m.c.username == username))).mappings().first()
        parents = {r.id: r.parent_id for r in (await conn.execute(select(u))).all()}
    async with throttle.hashing:
        ok = await asyncio.to_thread(
            verify_password, row["password_hash"] if row else None, password
        )
    if row is None or not ok or not row["active"]:
        if row is not None:
            await record(row["id"], "deactivated" if ok else "wrong_password")
        raise BadCredentials("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")
    await throttle.succeeded(attempt)
    await record(row["id"], "success")
    return staff_of(row, parents)


def staff_of(row: RowMapping, parents: dict[str, str | None]) -> Staff:
    """The person a member row describes, with the units they may see (no session yet)."""
    return Staff(
        username=row["username"],
        member_id=row["id"],
        role=row["role"],
        unit_id=row["unit_id"],
        name=row["name"],
        units=visible_units(parents, row["role"], row["unit_id"]),
    )
