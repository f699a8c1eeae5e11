"""Meeting digests as printable pages: the one the members were sent, and the next meeting's
as it stands now: whole for those who may see the unit, each member of the unit their own line
(`access.digest_view`)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from services.notify.access import digest_view, may_open_digest
from services.notify.deps import ConfigDep, PageStaff, SchedulerDep, SettingsDep
from services.notify.models import digests
from services.notify.web.pages import not_found, render
from shared.web import AppRuntime
from shared.webkit.pages import Pages

router = APIRouter(include_in_schema=False)


@router.get("/digests/{digest_id}", response_class=HTMLResponse)
async def digest_page(
    request: Request,
    digest_id: int,
    staff: PageStaff,
    kit: Pages,
    runtime: AppRuntime,
    settings: SettingsDep,
) -> HTMLResponse:
    """The digest the members were sent."""
    d = digests
    async with runtime.engine.connect() as conn:
        row = (
            await conn.execute(select(d.c.unit_id, d.c.content).where(d.c.id == digest_id))
        ).first()
    content = None if row is None else digest_view(staff, row.unit_id, json.loads(row.content))
    if content is None:
        return not_found(kit, request, settings, staff, "no_digest")
    return render(kit, request, settings, "digest.html", staff, digest=content, preview=False)


@router.get("/units/{unit_id}/digest", response_class=HTMLResponse)
async def digest_preview(
    request: Request,
    unit_id: str,
    staff: PageStaff,
    kit: Pages,
    settings: SettingsDep,
    config: ConfigDep,
    scheduler: SchedulerDep,
) -> HTMLResponse:
    """The next meeting's digest as it stands now."""
    meeting = config.meetings.get(unit_id)
    if meeting is None or not may_open_digest(staff, unit_id):
        return not_found(kit, request, settings, staff, "no_meeting")
    content = digest_view(staff, unit_id, await scheduler.preview(unit_id, meeting))
    return render(kit, request, settings, "digest.html", staff, digest=content, preview=True)
