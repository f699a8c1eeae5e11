"""Staff identity shared by the services: routing signs access tokens at sign-in and at each
refresh of a session, every service checks them.

An access token lives at most `MAX_ACCESS_TTL` and names its session (`sid`): routing keeps
the session, so signing out, deactivation, a role or unit change and a new password end it,
and every service refuses the session's tokens from then on (`shared.revocations`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

Role = Literal["member", "leader", "admin"]
# The cookie the staff pages share: routing's sign-in page sets it, every service reads it.
SESSION_COOKIE = "petitions_staff"
# The cookie that keeps a staff page's session alive: routing alone reads it, to mint a new
# access token when the one in `SESSION_COOKIE` has expired.
REFRESH_COOKIE = "petitions_refresh"
ALGORITHM = "HS256"
# The longest an access token may live: what it says about its holder may be this stale,
# and a revocation must be remembered this long (`shared.revocations`).
MAX_ACCESS_TTL = timedelta(minutes=15)
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
    # The sign-in session the token belongs to (the `sid` claim), revoked as a whole.
    session_id: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def issue_token(staff: Staff, *, secret: str, ttl: timedelta = MAX_ACCESS_TTL) -> str:
    """An access token for `staff` in their session `staff.session_id` (required)."""
    if not staff.session_id:
        raise ValueError("an access token belongs to a session: staff.session_id is empty")
    if ttl > MAX_ACCESS_TTL:
        raise ValueError(f"access tokens live at most {MAX_ACCESS_TTL}")
    now = datetime.now(UTC)
    claims = {
        "sub": staff.username,
        "sid": staff.session_id,
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
    if not isinstance(claims.get("sid"), str) or not claims["sid"]:
        raise InvalidTokenError("token without a session")
    return Staff(
        username=claims["sub"],
        member_id=claims.get("mid"),
        role=role,
        unit_id=claims.get("unit"),
        name=claims.get("name") or "",
        units=tuple(str(u) for u in claims.get("units") or ()),
        session_id=claims["sid"],
    )
