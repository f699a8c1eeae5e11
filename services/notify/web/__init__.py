"""Server-rendered pages: the leadership overview and, in embedded mode, the demo mailbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..channels import local_time, mailbox_entries, read_mailbox_text
from ..models import timeline
from ..settings import Settings
from ..timeline import status_label

TEMPLATES = Path(__file__).parent / "templates"


def page_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["local_time"] = local_time
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


def pages_router(*, engine: AsyncEngine, settings: Settings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    env = page_environment()

    @router.get("/", response_class=HTMLResponse)
    async def overview() -> HTMLResponse:
        petitions = await recent_petitions(engine)
        html = env.get_template("overview.html").render(
            petitions=petitions, mailbox=settings.embedded_mailbox
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
