"""Staff accounts: changing one's password, one-time links to set it (invitation, reset), and
the sign-in history.

A password change (with the current password) or a link used ends the person's other
sessions at once (`sessions.revoke_member_sessions`, announced to every service); the change
keeps the session it was made from, the link opens a new one. A one-time link is
`<link id>.<secret>`: routing keeps only a SHA-256 of it, mints it when notify asks for the
link to email it (so the token is never on the stream nor in notify's database), and accepts
it once, within 24 hours of the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.errors import (
    LinkInvalid,
    MemberNotFound,
    NotPermitted,
    WrongPassword,
)
from services.routing.passwords import check_new_password
from services.routing.sessions import revoke_member_sessions
from services.routing.signin import (
    HISTORY_KEEP,
    SignInThrottle,
    hash_password,
    staff_of,
    verify_password,
)
from shared import scope
from shared.auth import Staff
from shared.events import AccountLinkRequested, account_petition_id
from shared.messaging import add_to_outbox
from shared.rpc import AccountLinkReply

log = structlog.get_logger(__name__)

LINK_TTL = timedelta(hours=24)


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(token: str) -> str:
    # 256 random bits: a plain hash is enough, nobody can guess a token to match it.
    return hashlib.sha256(token.encode()).hexdigest()


# -- sign-in history ---------------------------------------------------------------------


async def signin_history(
    engine: AsyncEngine, member_id: str, *, limit: int = 100
) -> list[RowMapping]:
    """The person's last sign-in attempts, newest first (90 days at most)."""
    h = models.signin_history
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(h.c.at, h.c.outcome, h.c.address, h.c.user_agent)
            .where(h.c.member_id == member_id, h.c.at >= _now() - HISTORY_KEEP)
            .order_by(h.c.at.desc(), h.c.id.desc())
            .limit(limit)
        )
        return list(rows.mappings().all())


# -- members, as the scope rule sees them --------------------------------------------------


async def member_by(
    engine: AsyncEngine, *, member_id: str | None = None, username: str | None = None
) -> RowMapping | None:
    m = models.members
    where = m.c.id == member_id if member_id is not None else m.c.username == (username or "")
    async with engine.connect() as conn:
        return (await conn.execute(select(m).where(where))).mappings().first()


def may_manage(staff: Staff, member: RowMapping) -> bool:
    """Administrators manage every account; a leader the accounts of their unit and the units
    below it (`shared.scope.may_see_unit`, the one rule), except administrators' and their own
    (a leader changes their own password with the current one)."""
    if staff.is_admin:
        return True
    if member["role"] == "admin" or member["id"] == staff.member_id:
        return False
    return scope.may_see_unit(staff, member["unit_id"])


async def member_in_reach(engine: AsyncEngine, staff: Staff, member_id: str) -> RowMapping:
    """The member, if `staff` may manage their account (a member out of reach is not found)."""
    member = await member_by(engine, member_id=member_id)
    if member is None or not (scope.may_see_unit(staff, member["unit_id"]) or staff.is_admin):
        raise MemberNotFound("Không tìm thấy cán bộ.", "No such member.")
    if not may_manage(staff, member):
        raise NotPermitted(
            "Bạn không được quản lý tài khoản này.", "You may not manage this account."
        )
    return member


# -- password change -----------------------------------------------------------------------


@dataclass(frozen=True)
class Accounts:
    """Password changes and one-time links, on routing's database."""

    engine: AsyncEngine
    throttle: SignInThrottle
    announce: Callable[[], Awaitable[int]]
    base_url: str
    # Wakes the outbox relay, so the link's event leaves at once.
    after_commit: Callable[[], None] = lambda: None
    now: Callable[[], datetime] = _now

    async def _announce(self) -> None:
        await self.announce()

    async def change_password(
        self, staff: Staff, *, current: str, new: str, client: str, user_agent: str = ""
    ) -> int:
        """Set a new password (the policy applies) after checking the current one, which
        counts against the sign-in throttle like a sign-in; ends the person's other sessions
        at once and keeps this one. Answers how many sessions ended."""
        member = await member_by(self.engine, member_id=staff.member_id or "")
        if member is None or not member["active"]:
            raise MemberNotFound("Không tìm thấy cán bộ.", "No such member.")
        attempt = await self.throttle.begin(member["username"], client)
        async with self.throttle.hashing:
            ok = await asyncio.to_thread(verify_password, member["password_hash"], current)
        if not ok:
            raise WrongPassword(
                "Mật khẩu hiện tại không đúng.", "The current password is not right."
            )
        await self.throttle.succeeded(attempt)
        value = check_new_password(new, username=member["username"], name=member["name"])
        async with self.throttle.hashing:
            new_hash = await asyncio.to_thread(hash_password, value)
        m = models.members
        async with self.engine.begin() as conn:
            await conn.execute(
                update(m).where(m.c.id == member["id"]).values(password_hash=new_hash)
            )
            ended = await revoke_member_sessions(
                conn, [member["id"]], reason="password_changed", keep=staff.session_id
            )
            # A link sent before the change (perhaps to whoever knew the old password's
            # mailbox) stops working with it.
            link = models.account_links
            await conn.execute(
                update(link)
                .where(
                    link.c.member_id == member["id"],
                    link.c.used_at.is_(None),
                    link.c.expires_at > self.now(),
                )
                .values(expires_at=self.now())
            )
        await self._announce()
        log.info("password_changed", member_id=member["id"], sessions_ended=ended)
        return ended

    # -- one-time links --------------------------------------------------------------------

    async def request_link(
        self, staff: Staff, *, member_id: str, kind: Literal["invite", "reset"] = "reset"
    ) -> RowMapping:
        """A one-time link for the member, emailed to their work address by notify (the event
        goes out through the outbox with this transaction). Earlier unused links of the member
        stop working."""
        member = await member_in_reach(self.engine, staff, member_id)
        if not member["active"]:
            raise NotPermitted("Tài khoản đã ngừng hoạt động.", "The account is deactivated.")
        if not member["email"]:
            raise NotPermitted(
                "Cán bộ chưa có địa chỉ email công việc để gửi liên kết.",
                "The member has no work email address to send the link to.",
            )
        link = models.account_links
        now = self.now()
        link_id = uuid.uuid4().hex
        expires_at = now + LINK_TTL
        event = AccountLinkRequested.new(
            producer="routing",
            petition_id=account_petition_id(link_id),
            link_id=link_id,
            member_id=member["id"],
            kind=kind,
            expires_at=expires_at,
            requested_by=staff.username,
            occurred_at=now,
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                update(link)
                .where(link.c.member_id == member["id"], link.c.used_at.is_(None))
                .values(expires_at=now)
            )
            await conn.execute(
                insert(link).values(
                    id=link_id,
                    member_id=member["id"],
                    kind=kind,
                    requested_by=staff.username,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            await add_to_outbox(conn, models.messaging.outbox, event)
            row = (await conn.execute(select(link).where(link.c.id == link_id))).mappings().one()
        self.after_commit()
        log.info("account_link_requested", link_id=link_id, member_id=member["id"], kind=kind)
        return row

    async def mint_link(self, link_id: str) -> AccountLinkReply:
        """The link with a fresh token, for notify to email now (`found: false` once used or
        expired). Only the token's hash is kept; a previous token of the link stops working."""
        link, m = models.account_links, models.members
        now = self.now()
        secret = secrets.token_urlsafe(32)
        token = f"{link_id}.{secret}"
        async with self.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        select(link, m.c.username, m.c.name, m.c.email, m.c.active)
                        .join(m, m.c.id == link.c.member_id)
                        .where(link.c.id == link_id)
                    )
                )
                .mappings()
                .first()
            )
            if (
                row is None
                or row["used_at"] is not None
                or row["expires_at"] <= now
                or not row["active"]
                or not row["email"]
            ):
                return AccountLinkReply(found=False)
            await conn.execute(
                update(link)
                .where(link.c.id == link_id)
                .values(token_hash=_digest(token), minted_at=now)
            )
        return AccountLinkReply(
            found=True,
            kind=row["kind"],
            url=f"{self.base_url.rstrip('/')}/account/link/{token}",
            username=row["username"],
            name=row["name"],
            email=row["email"],
            expires_at=row["expires_at"].isoformat(),
        )

    async def link_for(self, token: str) -> RowMapping:
        """The live link a token opens, with its member (`LinkInvalid` otherwise)."""
        link_id, _, secret = token.partition(".")
        link, m = models.account_links, models.members
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(link, m.c.username, m.c.name, m.c.active)
                        .join(m, m.c.id == link.c.member_id)
                        .where(link.c.id == link_id)
                    )
                )
                .mappings()
                .first()
            )
        if (
            not secret
            or row is None
            or row["token_hash"] is None
            or not hmac.compare_digest(row["token_hash"], _digest(token))
            or row["used_at"] is not None
            or row["expires_at"] <= self.now()
            or not row["active"]
        ):
            raise LinkInvalid(
                "Liên kết không còn hiệu lực (đã dùng, quá 24 giờ hoặc đã có liên kết mới). "
                "Hãy nhờ lãnh đạo đơn vị hoặc quản trị gửi liên kết khác.",
                "This link no longer works (used, older than 24 hours, or a newer one was "
                "sent). Ask your unit leader or an administrator for another.",
            )
        return row

    async def use_link(self, token: str, *, new: str) -> Staff:
        """Set the password a live link allows (the policy applies), once: the link is spent,
        every session of the person ends. Answers the person, to open their new session."""
        row = await self.link_for(token)
        value = check_new_password(new, username=row["username"], name=row["name"])
        async with self.throttle.hashing:
            new_hash = await asyncio.to_thread(hash_password, value)
        link, m, u = models.account_links, models.members, models.units
        async with self.engine.begin() as conn:
            spent = await conn.execute(
                update(link)
                .where(
                    link.c.id == row["id"],
                    link.c.used_at.is_(None),
                    link.c.token_hash == row["token_hash"],
                    # Checked again here: a newer link or a deactivation may have come while
                    # the password was hashed.
                    link.c.expires_at > self.now(),
                    select(m.c.active)
                    .where(m.c.id == row["member_id"])
                    .scalar_subquery()
                    .is_(True),
                )
                .values(used_at=self.now())
            )
            if spent.rowcount != 1:
                raise LinkInvalid("Liên kết vừa được dùng.", "This link has just been used.")
            await conn.execute(
                update(m).where(m.c.id == row["member_id"]).values(password_hash=new_hash)
            )
            await revoke_member_sessions(conn, [row["member_id"]], reason="password_changed")
            member = (
                (await conn.execute(select(m).where(m.c.id == row["member_id"]))).mappings().one()
            )
            parents = {r.id: r.parent_id for r in (await conn.execute(select(u))).all()}
        await self._announce()
        log.info(
            "account_link_used", link_id=row["id"], member_id=row["member_id"], kind=row["kind"]
        )
        return staff_of(member, parents)
