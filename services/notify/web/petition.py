"""A petition's timeline and delivery log, as the timeline API gives them to staff who may
see the petition."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from services.notify.access import may_see_petition
from services.notify.deps import PageStaff, SettingsDep
from services.notify.models import notifications, timeline
from services.notify.web.pages import not_found, render
from shared.web import AppRuntime
from shared.webkit.pages import Pages

router = APIRouter(include_in_schema=False)


@router.get("/petitions/{petition_id}", response_class=HTMLResponse)
async def petition_page(
    request: Request,
    petition_id: uuid.UUID,
    staff: PageStaff,
    kit: Pages,
    runtime: AppRuntime,
    settings: SettingsDep,
) -> HTMLResponse:
    pid = str(petition_id)
    t, n = timeline, notifications
    async with runtime.engine.connect() as conn:
        if not await may_see_petition(conn, staff, pid):
            return not_found(kit, request, settings, staff, "no_petition")
        in_order = select(t).where(t.c.petition_id == pid).order_by(t.c.occurred_at, t.c.id)
        events = (await conn.execute(in_order)).mappings().all()
        log_query = select(n).where(n.c.petition_id == pid).order_by(n.c.id)
        log = (await conn.execute(log_query)).mappings().all()
    if not events and not log:
        return not_found(kit, request, settings, staff, "no_petition")
    return render(
        kit, request, settings, "petition.html", staff, petition_id=pid, events=events, log=log
    )
