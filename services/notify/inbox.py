"""Staff's in-app inbox: what the workspace lists, and the unread count it shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from .models import staff_inbox

# What a member reads of an in-app message (the row also holds its idempotency key).
MESSAGE_FIELDS = (
    "id",
    "petition_id",
    "template",
    "title_vi",
    "title_en",
    "body_vi",
    "body_en",
    "link",
    "created_at",
    "read_at",
)


def _unread(member_id: str) -> Select[int]:
    s = staff_inbox
    return (
        select(func.count())
        .select_from(s)
        .where(and_(s.c.member_id == member_id, s.c.read_at.is_(None)))
    )


async def unread_count(engine: AsyncEngine, member_id: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(_unread(member_id)) or 0)


async def messages(
    engine: AsyncEngine, member_id: str, *, unread_only: bool, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The unread count and the newest messages, read from one snapshot so the two agree
    while new messages arrive."""
    s = staff_inbox
    query = select(s).where(s.c.member_id == member_id)
    if unread_only:
        query = query.where(s.c.read_at.is_(None))
    async with engine.connect() as plain:
        conn = await plain.execution_options(isolation_level="SERIALIZABLE")
        unread = int(await conn.scalar(_unread(member_id)) or 0)
        rows = (await conn.execute(query.order_by(s.c.id.desc()).limit(limit))).mappings().all()
    return unread, [{name: r[name] for name in MESSAGE_FIELDS} for r in rows]


async def mark_read(
    engine: AsyncEngine, member_id: str, *, now: datetime, message_id: int | None = None
) -> int:
    """Mark one message (or all) read; only the member's own. Returns how many changed."""
    s = staff_inbox
    where = and_(s.c.member_id == member_id, s.c.read_at.is_(None))
    if message_id is not None:
        where = and_(where, s.c.id == message_id)
    async with engine.begin() as conn:
        result = await conn.execute(update(s).where(where).values(read_at=now))
    return int(result.rowcount or 0)


async def owns(engine: AsyncEngine, member_id: str, message_id: int) -> bool:
    s = staff_inbox
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(s.c.id).where(and_(s.c.id == message_id, s.c.member_id == member_id))
        )
    return found is not None
