"""Reading and writing what GeoReport adds to a petition. The petition itself is stored by
intake's `store.submit_petition`, the one way every channel submits."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.intake.models import open311_requests, petitions
from services.intake.open311.queries import RequestQuery
from services.intake.open311.submission import GeoReportExtra
from services.intake.petitions import FINAL_STATUSES, parse_reference


def recorder(
    *, key_id: str, token: str, extra: GeoReportExtra
) -> Callable[[AsyncConnection, uuid.UUID], Awaitable[None]]:
    """Records which client sent the new petition, and its GeoReport fields, in the
    petition's own transaction (`submit_petition(also=…)`)."""

    async def record(conn: AsyncConnection, petition_id: uuid.UUID) -> None:
        await conn.execute(
            insert(open311_requests).values(
                petition_id=str(petition_id),
                key_id=key_id,
                token=token,
                address_string=extra.address_string,
                address_id=extra.address_id,
                lat=extra.lat,
                long=extra.long,
                media_url=extra.media_url,
            )
        )

    return record


def _readable() -> Select[Any]:
    """A petition's public columns with its GeoReport fields; never contact data."""
    r = open311_requests.c
    return select(
        petitions.c.reference,
        petitions.c.status,
        petitions.c.category_id,
        petitions.c.unit_id,
        petitions.c.description,
        petitions.c.submitted_at,
        petitions.c.status_changed_at,
        petitions.c.due_at,
        r.key_id,
        r.token,
        r.address_string,
        r.address_id,
        r.lat,
        r.long,
        r.media_url,
    ).select_from(
        petitions.outerjoin(open311_requests, open311_requests.c.petition_id == petitions.c.id)
    )


async def _rows(engine: AsyncEngine, statement: Select[Any]) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(statement)).mappings().all()]


async def requests_by_ids(engine: AsyncEngine, ids: list[str]) -> list[dict[str, Any]]:
    """The petitions these ids name (typed as people type references), in the order asked."""
    references = list(dict.fromkeys(r for r in (parse_reference(i) for i in ids) if r))
    if not references:
        return []
    rows = await _rows(engine, _readable().where(petitions.c.reference.in_(references)))
    by_reference = {r["reference"]: r for r in rows}
    return [by_reference[r] for r in references if r in by_reference]


async def find_requests(
    engine: AsyncEngine, query: RequestQuery, *, every_channel: bool
) -> list[dict[str, Any]]:
    """Petitions submitted within the query's window, of its categories and open/closed
    statuses, newest first. Without `every_channel` (a caller without a key) only those that
    came in through GeoReport: residents who used the form did not ask to be listed, and a
    list of every reference and area is theirs to withhold."""
    if query.ids is not None:
        return await requests_by_ids(engine, query.ids)
    if query.service_codes == []:
        return []
    statement = _readable().where(
        petitions.c.submitted_at >= query.start, petitions.c.submitted_at <= query.end
    )
    if not every_channel:
        statement = statement.where(open311_requests.c.petition_id.is_not(None))
    if query.service_codes is not None:
        statement = statement.where(petitions.c.category_id.in_(query.service_codes))
    if query.statuses == {"open"}:
        statement = statement.where(petitions.c.status.not_in(FINAL_STATUSES))
    elif query.statuses == {"closed"}:
        statement = statement.where(petitions.c.status.in_(FINAL_STATUSES))
    statement = statement.order_by(petitions.c.submitted_at.desc(), petitions.c.reference)
    return await _rows(engine, statement.limit(query.limit))


async def request_by_token(engine: AsyncEngine, token: str) -> dict[str, Any] | None:
    rows = await _rows(engine, _readable().where(open311_requests.c.token == token))
    return rows[0] if rows else None
