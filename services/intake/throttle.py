"""Abuse kept out without a captcha: every public write (the form, the JSON API, Open311, the
resident's actions on the tracking page, link recovery) is counted per client address and per
contact in intake's database, so every replica enforces one limit; beyond it the request is
refused (429, `Retry-After`) before anything is stored.

Keys are stored as hashes: the table never holds an address, an email or a phone number.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.errors import TooManyRequests
from services.intake.models import public_hits

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d{1,6})\s*/\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RateLimit:
    """At most `count` requests within `window`."""

    count: int
    window: timedelta


def parse_rate_limit(value: str) -> RateLimit | None:
    """`10/minute`, `3/hour`, `100/day`, … ; `off` (or empty) means no limit."""
    if value.strip().lower() in ("off", ""):
        return None
    match = _SPEC.match(value)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"PETITIONS_PUBLIC_RATE_LIMIT: '{value}' phải có dạng 10/minute hoặc off / "
            "must look like 10/minute (second, minute, hour, day) or off"
        )
    return RateLimit(int(match.group(1)), timedelta(seconds=_UNITS[match.group(2).lower()]))


def normalise_email(value: str | None) -> str | None:
    """How two spellings of one address compare: trimmed, case-insensitive."""
    cleaned = (value or "").strip().casefold()
    return cleaned or None


def normalise_phone(value: str | None) -> str | None:
    """How two spellings of one number compare: its digits, `+84`/`84` read as the leading 0."""
    digits = "".join(ch for ch in value or "" if ch.isdigit())
    if digits.startswith("84") and len(digits) >= 11:
        digits = "0" + digits[2:]
    return digits or None


def address_key(client: str) -> str:
    return f"addr:{client}"


def contact_keys(email: str | None, phone: str | None) -> list[str]:
    """One key per contact given, normalised so that spelling it otherwise does not help."""
    keys = []
    if (e := normalise_email(email)) is not None:
        keys.append(f"email:{e}")
    if (p := normalise_phone(phone)) is not None:
        keys.append(f"phone:{p}")
    return keys


def _hashed(secret: bytes, key: str) -> str:
    """Keyed, so that a row cannot be turned back into the phone number or address it counts
    (a plain hash of ten digits is undone by trying them all)."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


class PublicThrottle:
    """Counts public writes in intake's database.

    A request is written down first and then counted with the other recent rows of its keys,
    so concurrent requests on different replicas cannot all slip under the limit (each sees the
    rows committed before its own count); a refused request takes its rows back, so a client
    that keeps trying is let in again once its earlier requests age out of the window.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        limit: RateLimit | None,
        *,
        secret: str,
        now: Callable[[], datetime],
        retention: timedelta = timedelta(hours=1),
    ) -> None:
        self.engine = engine
        self.limit = limit
        self._secret = f"public-throttle:{secret}".encode()
        self.now = now
        # Rows older than every window in use are deleted as requests come.
        self.retention = max(retention, limit.window if limit else retention)

    async def admit_submission(self, client: str, email: str | None, phone: str | None) -> None:
        """Count a petition sent from `client` with these contacts (form, API or Open311)."""
        await self.admit([address_key(client), *contact_keys(email, phone)])

    async def admit(self, keys: list[str], *, extra: Mapping[str, RateLimit] | None = None) -> None:
        """Count one request against each of `keys` (at the public limit) and `extra` (at its
        own limit), or refuse it with `TooManyRequests`. With the public limit `off`, only
        `extra` is counted."""
        limits: dict[str, RateLimit] = {}
        if self.limit is not None:
            limits.update({_hashed(self._secret, k): self.limit for k in dict.fromkeys(keys) if k})
        limits.update({_hashed(self._secret, k): v for k, v in (extra or {}).items()})
        if not limits:
            return
        h = public_hits
        now = self.now()
        async with self.engine.begin() as conn:
            await conn.execute(delete(h).where(h.c.at <= now - self.retention))
            ids = []
            for key in limits:
                result = await conn.execute(insert(h).values(key=key, at=now))
                ids.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
        oldest = now - max(limit.window for limit in limits.values())
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(h.c.id, h.c.key, h.c.at)
                    .where(h.c.key.in_(list(limits)), h.c.at > oldest)
                    .order_by(h.c.at, h.c.id)
                )
            ).all()
        waits = []
        for key, limit in limits.items():
            earlier = [
                r.at for r in rows if r.key == key and r.id not in ids and r.at > now - limit.window
            ]
            if len(earlier) >= limit.count:
                # Room again when enough of the oldest requests leave the window.
                frees_at = earlier[len(earlier) - limit.count] + limit.window
                waits.append((frees_at - now).total_seconds())
        if waits:
            async with self.engine.begin() as conn:
                await conn.execute(delete(h).where(h.c.id.in_(ids)))
            raise TooManyRequests(max(1, math.ceil(max(waits))))
