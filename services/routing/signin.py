"""Staff sign-in: a username and password give the person, with the units they may see.

Wrong credentials and too many recent failures are refused alike for every username, and a
wrong name costs as long as a wrong password (it is checked against a stand-in hash, made on
first use rather than when the module is imported).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.errors import BadCredentials, TooManyAttempts
from shared.auth import Staff


@dataclass
class SignInThrottle:
    """At most `max_failures` wrong passwords per username and client address in `window_s`
    seconds; the next attempts are refused until the oldest failure ages out.

    Kept in memory: each replica counts on its own and a restart forgets, which is enough to
    make guessing a password slow without adding a store. The address is the TCP peer, so
    behind a reverse proxy every resident shares it and only the username half keys.
    """

    max_failures: int = 5
    window_s: float = 15 * 60
    now: Callable[[], float] = time.monotonic
    _failures: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str]) -> list[float]:
        cutoff = self.now() - self.window_s
        kept = [t for t in self._failures.get(key, ()) if t > cutoff]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, username: str, client: str) -> bool:
        return len(self._recent((username, client))) >= self.max_failures

    def failed(self, username: str, client: str) -> None:
        if len(self._failures) > 10_000:
            # Bound the memory an attacker can make us hold: forget whatever has aged out.
            for key in list(self._failures):
                self._recent(key)
        self._failures.setdefault((username, client), []).append(self.now())

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username, client), None)


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
    engine: AsyncEngine, throttle: SignInThrottle, *, username: str, password: str, client: str
) -> Staff:
    """The active staff member behind a username and password (`BadCredentials` otherwise;
    `TooManyAttempts` after too many recent failures from this address)."""
    username = username.strip().lower()
    if throttle.blocked(username, client):
        raise TooManyAttempts(
            "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 15 phút.",
            "Too many failed sign-ins. Please try again in 15 minutes.",
        )
    m, u = models.members, models.units
    async with engine.connect() as conn:
        row = (await conn.execute(select(m).where(m.c.username == username))).mappings().first()
        parents = {r.id: r.parent_id for r in (await conn.execute(select(u))).all()}
    ok = await asyncio.to_thread(_verify, row["password_hash"] if row else None, password)
    if row is None or not ok or not row["active"]:
        throttle.failed(username, client)
        raise BadCredentials("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")
    throttle.succeeded(username, client)
    return Staff(
        username=row["username"],
        member_id=row["id"],
        role=row["role"],
        unit_id=row["unit_id"],
        name=row["name"],
        units=visible_units(parents, row["role"], row["unit_id"]),
    )
