"""API keys for GeoReport clients: issued by an administrator per client, shown once, stored
only as a hash, revocable. A key is 256 random bits, so a plain SHA-256 is enough to make a
leaked table useless (there is no password to guess)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.intake.errors import IntakeError
from services.intake.models import open311_keys
from services.intake.open311.schemas import ApiKeyIssued, ApiKeyView
from services.intake.petitions import clean_text

KEY_MARK = "o311_"
PREFIX_CHARS = 12


class InvalidClientName(IntakeError):
    """An administrator named a client with nothing, or too much, to tell it by."""

    problem_type = "urn:petitions:problem:validation"

    def __init__(self) -> None:
        super().__init__(
            "client: cần tên từ 1 đến 100 ký tự / a name of 1 to 100 characters is required"
        )


def new_key() -> str:
    return KEY_MARK + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def client_name(raw: str) -> str:
    name = clean_text(raw)
    if not name or len(name) > 100:
        raise InvalidClientName
    return name


async def issue_key(
    engine: AsyncEngine, *, client: str, created_by: str, now: datetime
) -> ApiKeyIssued:
    """A new key for `client`; the answer is the only place the key itself ever appears."""
    key = new_key()
    row = {
        "id": str(uuid.uuid4()),
        "client": client_name(client),
        "key_hash": hash_key(key),
        "key_prefix": key[:PREFIX_CHARS],
        "created_by": created_by,
        "created_at": now,
    }
    async with engine.begin() as conn:
        await conn.execute(insert(open311_keys).values(**row))
    return ApiKeyIssued(
        id=row["id"],
        client=row["client"],
        key=key,
        key_prefix=row["key_prefix"],
        created_at=now,
    )


async def list_keys(engine: AsyncEngine) -> list[ApiKeyView]:
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(open311_keys).order_by(open311_keys.c.created_at)))
            .mappings()
            .all()
        )
    return [ApiKeyView.model_validate(dict(r)) for r in rows]


async def revoke_key(engine: AsyncEngine, key_id: str, *, now: datetime) -> bool | None:
    """Revoke a key from now on; True when it revoked it, False when it was already revoked,
    None for a key that was never issued. Requests it sent stay."""
    async with engine.begin() as conn:
        exists = await conn.scalar(select(open311_keys.c.id).where(open311_keys.c.id == key_id))
        if exists is None:
            return None
        changed = await conn.execute(
            update(open311_keys)
            .where(open311_keys.c.id == key_id, open311_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return changed.rowcount == 1


async def active_key_id(engine: AsyncEngine, key: str) -> str | None:
    """The id of the issued, unrevoked key `key`, or None."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            select(open311_keys.c.id).where(
                open311_keys.c.key_hash == hash_key(key), open311_keys.c.revoked_at.is_(None)
            )
        )
    return str(found) if found is not None else None
