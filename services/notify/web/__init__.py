"""Server-rendered pages: the leadership dashboard (statistics per unit, recent petitions, what
could not be delivered), a petition's timeline with its delivery log, meeting digests as
printable pages and, in embedded mode, the demo mailbox."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock

from ..channels import local_date, local_time, mailbox_entries, read_mailbox_text
from ..config import NotifyConfig
from ..models import digests, notifications, timeline
from ..scheduled import Scheduler
from ..settings import Settings
from ..stats import all_scope_totals
from ..timeline import status_label

TEMPLATES = Path(__file__).parent / "templates"


def page_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    env.filters["local_date"] = local_date
    env.filters["percent"] = lambda v: "–" if v is None else f"{v * 100:.0f}%"
    env.filters["hours"] = lambda v: "–" if v is None else f"{v / 3600:.1f} h"
    return env


async def recent_petitions(engine: AsyncEngine, *, limit: int = 50) -> list[dict[str, Any]]:
    """The latest status of the most recently active petitions, from their timelines."""
    t = timeline
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(t.c.petition_id, t.c.kind, t.c.occurred_at, t.c.payload)
                    .order_by(t.c.occurred_at.desc(), t.c.id.desc())
                    .limit(limit * 20)
                )
            )
            .mappings()
            .all()
        )
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = latest.setdefault(
                row["petition_id"],
                {
                    "petition_id": row["petition_id"],
                    "updated_at": row["occurred_at"],
                    "status": None,
                },
            )
            if entry["status"] is None:
                entry["status"] = status_label(row["kind"], json.loads(row["payload"]))
        chosen = list(latest.values())[:limit]
        submitted = (
            (
                await conn.execute(
                    select(t.c.petition_id, t.c.payload).where(
                        and_(
                            t.c.kind == "submitted",
                            t.c.petition_id.in_([c["petition_id"] for c in chosen]),
                        )
                    )
                )
            )
            .mappings()
            .all()
        )
    details = {r["petition_id"]: json.loads(r["payload"]) for r in submitted}
    for entry in chosen:
        data = details.get(entry["petition_id"], {})
        entry["reference"] = data.get("reference") or entry["petition_id"][:8].upper()
        entry["title"] = data.get("title") or ""
        entry["status"] = entry["status"] or ("Đang cập nhật", "Updating")
    return chosen


def pages_router(
    *,
    engine: AsyncEngine,
    settings: Settings,
    config: NotifyConfig,
    clock: Clock,
    scheduler: Scheduler,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    env = page_environment()

    @router.get("/", response_class=HTMLResponse)
    async def overview(
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
    ) -> HTMLResponse:
        last = end or clock.now().astimezone(config.zone).date()
        first = start or last - timedelta(days=29)
        petitions = await recent_petitions(engine)
        n, d = notifications, digests
        async with engine.connect() as conn:
            units = await all_scope_totals(conn, scope="unit", start=first, end=last)
            dead = await conn.scalar(
                select(func.count()).select_from(n).where(n.c.status == "dead")
            )
            recent_digests = (
                (
                    await conn.execute(
                        select(d.c.id, d.c.unit_id, d.c.meeting_at)
                        .order_by(d.c.meeting_at.desc())
                        .limit(10)
                    )
                )
                .mappings()
                .all()
            )
        html = env.get_template("overview.html").render(
            petitions=petitions,
            units=units,
            first=first,
            last=last,
            dead=int(dead or 0),
            digests=recent_digests,
            meetings=config.meetings,
            mailbox=settings.embedded_mailbox,
        )
        return HTMLResponse(html)

    @router.get("/petitions/{petition_id}", response_class=HTMLResponse)
    async def petition_page(petition_id: uuid.UUID) -> HTMLResponse:
        """A petition's timeline and delivery log, as the timeline API gives them to staff."""
        pid = str(petition_id)
        t, n = timeline, notifications
        async with engine.connect() as conn:
            events = (
                (
                    await conn.execute(
                        select(t).where(t.c.petition_id == pid).order_by(t.c.occurred_at, t.c.id)
                    )
                )
                .mappings()
                .all()
            )
            log = (
                (await conn.execute(select(n).where(n.c.petition_id == pid).order_by(n.c.id)))
                .mappings()
                .all()
            )
        if not events and not log:
            raise HTTPException(404, "Không có phản ánh này / No such petition")
        html = env.get_template("petition.html").render(
            petition_id=pid, events=events, log=log, mailbox=settings.embedded_mailbox
        )
        return HTMLResponse(html)

    @router.get("/digests/{digest_id}", response_class=HTMLResponse)
    async def digest_page(digest_id: int) -> HTMLResponse:
        """The digest the members were sent, as a printable page."""
        async with engine.connect() as conn:
            content = await conn.scalar(select(digests.c.content).where(digests.c.id == digest_id))
        if content is None:
            raise HTTPException(404, "Không có bản tổng hợp này / No such digest")
        html = env.get_template("digest.html").render(
            digest=json.loads(content), preview=False, mailbox=settings.embedded_mailbox
        )
        return HTMLResponse(html)

    @router.get("/units/{unit_id}/digest", response_class=HTMLResponse)
    async def digest_preview(unit_id: str) -> HTMLResponse:
        """The next meeting's digest as it stands now, printable."""
        meeting = config.meetings.get(unit_id)
        if meeting is None:
            raise HTTPException(404, "Đơn vị chưa có lịch họp / No meeting schedule for this unit")
        content = await scheduler.preview(unit_id, meeting)
        html = env.get_template("digest.html").render(
            digest=content, preview=True, mailbox=settings.embedded_mailbox
        )
        return HTMLResponse(html)

    def mailbox_dir() -> Path:
        # The demo mailbox holds residents' addresses: it exists only without SMTP, never in production.
        if not settings.embedded_mailbox or settings.env == "production":
            raise HTTPException(404, "Không có hộp thư / No mailbox")
        return settings.mailbox_dir

    @router.get("/mail", response_class=HTMLResponse)
    async def mailbox() -> HTMLResponse:
        entries = mailbox_entries(mailbox_dir())
        return HTMLResponse(env.get_template("mailbox.html").render(entries=entries))

    @router.get("/mail/{name}", response_class=HTMLResponse)
    async def mail(name: str) -> HTMLResponse:
        found = read_mailbox_text(mailbox_dir(), name)
        if found is None:
            raise HTTPException(404, "Không có thư này / No such message")
        headers, text = found
        return HTMLResponse(
            env.get_template("message.html").render(name=name, headers=headers, text=text)
        )

    @router.get("/mail/{name}/raw")
    async def raw_mail(name: str) -> FileResponse:
        directory = mailbox_dir()
        if read_mailbox_text(directory, name) is None:
            raise HTTPException(404, "Không có thư này / No such message")
        return FileResponse(directory / name, media_type="message/rfc822", filename=name)

    return router
