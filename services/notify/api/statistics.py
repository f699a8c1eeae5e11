"""Resolution statistics: a unit's or a member's counters over a range of local days, and one
petition's facts. Figures are for those who may see every petition they count (`shared.scope`):
a unit's for the leaders of the unit or a unit above it, a member's for the member, their
leaders and administrators, a petition's for those who may see the petition.

No `from __future__ import annotations` here: FastAPI must see the `Annotated` dependencies
and pydantic the models as objects rather than strings.
"""

import re
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import select

from shared.auth import Staff
from shared.scope import may_see_member, may_see_unit
from shared.web import AppRuntime, CurrentStaff, problem_responses

from ..access import may_see_petition
from ..deps import ConfigDep, DirectoryDep, UnitCacheDep
from ..directory import Directory, DirectoryUnavailable
from ..errors import (
    InvalidDateRange,
    MemberNotVisible,
    PetitionNotFound,
    RoutingUnavailable,
    UnitNotVisible,
    UnitTreeUnavailable,
)
from ..models import petition_facts
from ..stats import petition_report, scope_totals
from .openapi import operation_id

# Statistics cover at most this many days per request.
MAX_RANGE_DAYS = 3660
DEFAULT_RANGE_DAYS = 30
# Unit and member ids are routing's; the counters' column holds up to 100 characters.
ScopeId = Annotated[str, Path(min_length=1, max_length=100)]


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _calendar_day(value: object) -> object:
    """A day as the document says, `YYYY-MM-DD`: not the Unix timestamps and other forms that
    pydantic would also read as a date (`to=0` is a mistake, not 1 January 1970)."""
    if isinstance(value, str) and not _DAY.fullmatch(value):
        raise ValueError("expected a day as YYYY-MM-DD")
    return value


LocalDay = Annotated[date, BeforeValidator(_calendar_day)]


class DateRange(BaseModel):
    """Local (Asia/Ho_Chi_Minh) days `from`..`to`, inclusive; the last 30 days by default."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    start: LocalDay | None = Field(
        default=None, alias="from", description="first local day, YYYY-MM-DD"
    )
    end: LocalDay | None = Field(default=None, alias="to", description="last local day, YYYY-MM-DD")


class UnitRange(DateRange):
    sub_units: bool = Field(default=False, description="add the figures of every unit below it")


class Figures(BaseModel):
    """Counters over the range, and the rates and averages people read. The on-time rate is
    on-time resolutions over resolutions plus deadline escalations."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    received: int = Field(description="petitions from residents of the unit")
    assigned: int
    responded: int = Field(description="first responses (accept, question or resolution)")
    response_n: int = Field(description="first responses whose submission time is known")
    response_s: int = Field(description="their seconds from submission, summed")
    resolved: int
    resolved_on_time: int
    resolution_n: int = Field(description="resolutions whose submission time is known")
    resolution_s: int = Field(description="their seconds from submission, summed")
    escalated: int
    escalated_late: int = Field(description="escalations because the deadline passed")
    reopened: int = Field(description="resolutions the resident reopened")
    satisfied: int = Field(description="residents who said it was settled")
    unsatisfied: int = Field(description="residents who said it was not")
    resolved_late: int
    on_time_rate: float | None
    avg_first_response_s: float | None
    avg_resolution_s: float | None
    satisfaction_rate: float | None
    reopen_rate: float | None


class UnitFigures(Figures):
    unit_id: str
    units: list[str] = Field(
        description="the units added up: this one, and with `sub_units` "
        "every unit below it that the caller may see"
    )


class MemberFigures(Figures):
    member_id: str


class RungReport(BaseModel):
    """One holder's time with the case at one rung, and whether it kept its deadline."""

    rung: int
    member_id: str
    member_name: str
    unit_id: str
    case_id: str
    assigned_at: datetime
    due_at: datetime | None
    ended_at: datetime | None
    outcome: Literal[
        "open", "resolved", "escalated", "reassigned", "declined", "closed", "rejected", "withdrawn"
    ]
    on_time: bool | None
    escalation_reason: str | None
    verdict: Literal["on_time", "late", "in_progress"] | None


# A petition's status as its events tell it (`stats.replay`); `unknown` until the submission
# itself has arrived.
PetitionStatus = Literal[
    "unknown",
    "submitted",
    "assigned",
    "accepted",
    "waiting_for_resident",
    "resolved",
    "escalated",
    "reopened",
    "closed",
    "rejected",
    "withdrawn",
]


class PetitionFigures(BaseModel):
    petition_id: uuid.UUID
    reference: str | None
    status: PetitionStatus
    unit_id: str | None
    member_id: str | None
    rung: int | None
    submitted_at: datetime | None
    time_to_first_response_s: int | None
    time_to_resolution_s: int | None
    reopen_count: int
    escalation_count: int
    satisfied: bool | None = Field(description="the resident's last word, if any")
    rungs: list[RungReport]


router = APIRouter(
    prefix="/api/v1/stats", tags=["statistics"], generate_unique_id_function=operation_id
)


def date_range(query: DateRange, *, today: date) -> tuple[date, date]:
    """`from`..`to` inclusive, in local days; the last 30 days up to `to` (today) by default."""
    end = query.end or today
    start = query.start or end - timedelta(days=min(DEFAULT_RANGE_DAYS - 1, (end - date.min).days))
    if start > end:
        raise InvalidDateRange("`from` sau `to` / `from` is after `to`")
    if (end - start).days > MAX_RANGE_DAYS:
        raise InvalidDateRange("Khoảng thời gian quá dài / Range too long")
    return start, end


@router.get("/units/{unit_id}", responses=problem_responses(401, 403, 422, 503))
async def unit_stats(
    unit_id: ScopeId,
    staff: CurrentStaff,
    runtime: AppRuntime,
    config: ConfigDep,
    unit_cache: UnitCacheDep,
    query: Annotated[UnitRange, Query()],
) -> UnitFigures:
    """A unit's counters over local days `from`..`to`, with the on-time rate and averages;
    with `sub_units=true`, the unit and every unit below it added up. For those who may see
    every petition of the unit (a leader of it or of a unit above it; administrators)."""
    if not may_see_unit(staff, unit_id):
        raise UnitNotVisible
    first, last = date_range(query, today=runtime.clock.now().astimezone(config.zone).date())
    counted = [unit_id]
    if query.sub_units:
        tree = await unit_cache.tree()
        if tree is None:
            raise UnitTreeUnavailable
        counted = [u for u in tree.subtree(unit_id) if may_see_unit(staff, u)]
    async with runtime.engine.connect() as conn:
        totals = await scope_totals(conn, scope="unit", scope_ids=counted, start=first, end=last)
    return UnitFigures.model_validate(
        {"unit_id": unit_id, "units": counted, "from": first, "to": last, **totals}
    )


@router.get("/members/{member_id}", responses=problem_responses(401, 403, 422, 503))
async def member_stats(
    member_id: ScopeId,
    staff: CurrentStaff,
    runtime: AppRuntime,
    config: ConfigDep,
    directory: DirectoryDep,
    query: Annotated[DateRange, Query()],
) -> MemberFigures:
    """A member's counters: for the member, a leader whose units include the member's unit,
    and administrators."""
    if not may_see_member(staff, member_id, await _unit_of(staff, member_id, directory)):
        raise MemberNotVisible
    first, last = date_range(query, today=runtime.clock.now().astimezone(config.zone).date())
    async with runtime.engine.connect() as conn:
        totals = await scope_totals(
            conn, scope="member", scope_ids=[member_id], start=first, end=last
        )
    return MemberFigures.model_validate(
        {"member_id": member_id, "from": first, "to": last, **totals}
    )


async def _unit_of(staff: Staff, member_id: str, directory: Directory) -> str | None:
    """The member's unit, asked of routing only when it decides the answer (a leader looking
    at someone else's figures)."""
    if staff.role != "leader" or staff.member_id == member_id:
        return None
    try:
        found = await directory.members(member_ids=[member_id])
    except DirectoryUnavailable:
        raise RoutingUnavailable from None
    return found[0].unit_id if found else None


@router.get("/petitions/{petition_id}", responses=problem_responses(401, 404))
async def petition_stats(
    petition_id: uuid.UUID, staff: CurrentStaff, runtime: AppRuntime
) -> PetitionFigures:
    """Time to first response and to resolution, each rung on time or late, reopen count
    and the resident's satisfaction."""
    pf = petition_facts
    async with runtime.engine.connect() as conn:
        if not await may_see_petition(conn, staff, str(petition_id)):
            raise PetitionNotFound
        row = (
            (await conn.execute(select(pf).where(pf.c.petition_id == str(petition_id))))
            .mappings()
            .first()
        )
    if row is None:
        raise PetitionNotFound
    return PetitionFigures.model_validate(petition_report(dict(row), now=runtime.clock.now()))
