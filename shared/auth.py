"""Staff identity shared by the services: routing signs tokens at sign-in, every service checks them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

Role = Literal["member", "leader", "admin"]
# The cookie the staff pages share: routing's sign-in page sets it, every service reads it.
SESSION_COOKIE = "petitions_staff"
ALGORITHM = "HS256"
AUDIENCE = "petitions-staff"


class InvalidTokenError(Exception):
    """A bearer token that is missing, expired, forged or malformed."""


@dataclass(frozen=True)
class Staff:
    """Who is calling: a member, a unit leader, or an administrator (every unit)."""

    username: str
    member_id: str | None
    role: Role
    unit_id: str | None
    name: str = ""
    # Units whose petitions this person may see: a leader's unit and every unit below it, a
    # member's own unit. Routing, which owns the area tree, computes it at sign-in so the
    # other services can check access without a copy of the tree.
    units: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see_unit(self, unit_id: str | None) -> bool:
        return self.is_admin or (unit_id is not None and unit_id in self.units)


def issue_token(staff: Staff, *, secret: str, ttl: timedelta = timedelta(hours=12)) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": staff.username,
        "mid": staff.member_id,
        "role": staff.role,
        "unit": staff.unit_id,
        "name": staff.name,
        "units": list(staff.units),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, *, secret: str) -> Staff:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=AUDIENCE)
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(str(exc)) from exc
    role = claims.get("role")
    if role not in ("member", "leader", "admin") or not claims.get("sub"):
        raise InvalidTokenError("token without a valid role or subject")
    return Staff(
        username=claims["sub"],
        member_id=claims.get("mid"),
        role=role,
        unit_id=claims.get("unit"),
        name=claims.get("name") or "",
        units=tuple(str(u) for u in claims.get("units") or ()),
    )
