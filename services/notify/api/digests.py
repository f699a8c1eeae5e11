"""Meeting digests as they were sent: a unit's open, overdue, escalated and resolved cases per
member, whole for those who may see the unit, and each member of the unit their own line
(`access.digest_view`).

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependencies
and pydantic the models as objects rather than strings.
"""

import json
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from shared.web import AppRuntime, CurrentStaff, problem_responses

from ..access import digest_view
from ..errors import DigestNotFound
from ..models import digests
from .notifications import RowId
from .openapi import operation_id


class DigestItem(BaseModel):
    """One case in a digest section."""

    reference: str
    title: str
    rung: int | None
    due_at: datetime | None
    status: str
    link: str = Field(description="the case in the member workspace")
    at: datetime | None = Field(default=None, description="when it was escalated or resolved")
    on_time: bool | None = None


class DigestMember(BaseModel):
    """A member's cases: open ones they hold, and what escalated or was resolved at the unit
    while they held it, since the last meeting."""

    member_id: str
    name: str
    open: list[DigestItem]
    overdue: list[DigestItem]
    escalated: list[DigestItem]
    resolved: list[DigestItem]


class DigestTotals(BaseModel):
    open: int
    overdue: int
    escalated: int
    resolved: int


class Digest(BaseModel):
    id: int
    unit_id: str
    unit_name: str
    meeting_at: datetime
    since: datetime = Field(description="the previous meeting")
    generated_at: datetime
    totals: DigestTotals
    members: list[DigestMember]


router = APIRouter(
    prefix="/api/v1/digests", tags=["digests"], generate_unique_id_function=operation_id
)


@router.get("/{digest_id}", responses=problem_responses(401, 404))
async def digest(digest_id: RowId, staff: CurrentStaff, runtime: AppRuntime) -> Digest:
    """A meeting digest: whole for those who may see its unit, a member's own line for them."""
    d = digests
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(select(d.c.unit_id, d.c.content).where(d.c.id == digest_id))
        ).first()
    content = None if row is None else digest_view(staff, row.unit_id, json.loads(row.content))
    if content is None:
        raise DigestNotFound
    return Digest.model_validate({**content, "id": digest_id})
