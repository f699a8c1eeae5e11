"""Server-rendered pages: the leadership dashboard (statistics per unit, recent petitions, what
could not be delivered), a petition's timeline with its delivery log, meeting digests as
printable pages and, in embedded mode, the demo mailbox.

Every page but the demo mailbox needs a signed-in staff member (routing's sign-in page sets the
session cookie; without it the browser is sent there and comes back) and shows only what that
person may see (`access.py`): petitions of their units or assigned to them, their units' figures
and digests. The demo mailbox exists only without SMTP and never in production; it is open, as
the page says.

No `from __future__ import annotations` here: FastAPI must see the `PageStaff` dependency
alias, built inside `pages_router`, as an object rather than a string.
"""

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import SESSION_COOKIE, InvalidTokenError, Staff, read_token
from shared.clock import Clock

from ..access import may_see_petition, visible_filter
from ..channels import local_date, local_time, mailbox_entries, read_mailbox_text
from ..config import NotifyConfig
from ..models import STAT_COUNTERS, digests, notifications, timeline
from ..scheduled import Scheduler
from ..settings import Settings
from ..stats import all_scope_totals, summarise_counters
from ..timeline import status_label
from ..units import UnitCache, UnitTree

TEMPLATES = Path(__file__).parent / "templates"
# http(s) only: nothing in a message becomes a `javascript:` link.
_LINK = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"


def linkify(text: str) -> Markup:
    """Plain text as HTML: every piece escaped, web addresses made into links."""
    parts: list[Markup] = []
    pos = 0
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        parts.append(escape(text[pos : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(url))
        pos = match.start() + len(url)
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


class SignInRequired(Exception):
    """A page asked for without a valid session: the browser goes to routing's sign-in page,
    which brings it back to `next`."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def sign_in_url(settings: Settings, request: Request) -> str:
    """`{routing}/signin?next=<this page's public URL>` (public: behind a proxy the request's
    own host is not the one the browser used)."""
    here = settings.notify_url.rstrip("/") + request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return f"{settings.routing_url.rstrip('/')}/signin?next={quote(here, safe='')}"


def install_sign_in_redirect(app: FastAPI) -> None:
    async def redirect(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(exc.location, status_code=303)

    app.add_exception_handler(SignInRequired, redirect)


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
    env.filters["linkify"] = linkify
    return env


def unit_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    staff: Staff,
    tree: UnitTree | None,
    with_sub_units: bool,
) -> list[dict[str, Any]]:
    """The dashboard's units, named, in tree order, each with its own figures or, with
    `with_sub_units`, added to those of the units below it that this person may see."""
    own = {r["id"]: r["counters"] for r in rows}
    if tree is None:
        return [{**r, "name": r["id"], "depth": 0} for r in rows]
    shown = set(own)
    if with_sub_units:
        # A unit with no figures of its own still adds up those below it.
        shown |= set(tree.units if staff.is_admin else staff.units)
    result = []
    for unit_id in tree.in_tree_order(sorted(shown)):
        counted = tree.subtree(unit_id) if with_sub_units else [unit_id]
        total = dict.fromkeys(STAT_COUNTERS, 0)
        for sub in counted:
            if staff.may_see_unit(sub):
                for name, value in own.get(sub, {}).items():
                    total[name] += value
        if not any(total.values()):
            continue
        result.append(
            {
                "id": unit_id,
                "name": tree.name(unit_id),
                "depth": tree.depth(unit_id),
                **summarise_counters(total),
            }
        )
    return result


async def recent_petitions(
    engine: AsyncEngine, staff: Staff, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest status of the most recently active petitions this person may see, from their
    timelines."""
    t = timeline
    query = select(t.c.petition_id, t.c.kind, t.c.occurred_at, t.c.payload)
    allowed = visible_filter(staff, t.c.petition_id)
    if allowed is not None:
        query = query.where(allowed)
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    query.order_by(t.c.occurred_at.desc(), t.c.id.desc()).limit(limit * 20)
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
    unit_cache: UnitCache,
) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    env = page_environment()
    secret = settings.secret_key.get_secret_value

    def page_staff(request: Request) -> Staff:
        """The signed-in staff member (session cookie, or a bearer token for scripts);
        anyone else is sent to sign in."""
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        token = token or request.cookies.get(SESSION_COOKIE)
        if token:
            try:
                return read_token(token, secret=secret())
            except InvalidTokenError:
                pass
        raise SignInRequired(sign_in_url(settings, request))

    PageStaff = Annotated[Staff, Depends(page_staff)]

    def render(template: str, staff: Staff | None, **values: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            staff=staff,
            mailbox=settings.embedded_mailbox and settings.env != "production",
            **values,
        )
        return HTMLResponse(html)

    @router.get("/", response_class=HTMLResponse)
    async def overview(
        staff: PageStaff,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        view: Annotated[Literal["tree", "self"], Query()] = "tree",
    ) -> HTMLResponse:
        last = end or clock.now().astimezone(config.zone).date()
        first = start or last - timedelta(days=29)
        petitions = await recent_petitions(engine, staff)
        tree = await unit_cache.tree()
        n, d = notifications, digests
        async with engine.connect() as conn:
            rows = await all_scope_totals(
                conn,
                scope="unit",
                start=first,
                end=last,
                only=None if staff.is_admin else staff.units,
            )
            dead = (
                await conn.scalar(select(func.count()).select_from(n).where(n.c.status == "dead"))
                if staff.is_admin
                else None
            )
            listed = select(d.c.id, d.c.unit_id, d.c.meeting_at)
            if not staff.is_admin:
                listed = listed.where(d.c.unit_id.in_(staff.units))
            recent_digests = [
                dict(r)
                for r in (await conn.execute(listed.order_by(d.c.meeting_at.desc()).limit(10)))
                .mappings()
                .all()
            ]
        for digest in recent_digests:
            digest["unit_name"] = tree.name(digest["unit_id"]) if tree else digest["unit_id"]
        meetings = {
            unit_id: m.name or (tree.name(unit_id) if tree else unit_id)
            for unit_id, m in config.meetings.items()
            if staff.may_see_unit(unit_id)
        }
        return render(
            "overview.html",
            staff,
            petitions=petitions,
            units=unit_rows(rows, staff=staff, tree=tree, with_sub_units=view == "tree"),
            view=view if tree is not None else "self",
            tree_known=tree is not None,
            first=first,
            last=last,
            dead=None if dead is None else int(dead),
            digests=recent_digests,
            meetings=meetings,
        )

    @router.get("/petitions/{petition_id}", response_class=HTMLResponse)
    async def petition_page(petition_id: uuid.UUID, staff: PageStaff) -> HTMLResponse:
        """A petition's timeline and delivery log, as the timeline API gives them to staff."""
        pid = str(petition_id)
        t, n = timeline, notifications
        async with engine.connect() as conn:
            if not await may_see_petition(conn, staff, pid):
                raise HTTPException(404, "Không có phản ánh này / No such petition")
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
        return render("petition.html", staff, petition_id=pid, events=events, log=log)

    @router.get("/digests/{digest_id}", response_class=HTMLResponse)
    async def digest_page(digest_id: int, staff: PageStaff) -> HTMLResponse:
        """The digest the members were sent, as a printable page, for those who may see its
        unit."""
        d = digests
        async with engine.connect() as conn:
            row = (
                await conn.execute(select(d.c.unit_id, d.c.content).where(d.c.id == digest_id))
            ).first()
        if row is None or not staff.may_see_unit(row.unit_id):
            raise HTTPException(404, "Không có bản tổng hợp này / No such digest")
        return render("digest.html", staff, digest=json.loads(row.content), preview=False)

    @router.get("/units/{unit_id}/digest", response_class=HTMLResponse)
    async def digest_preview(unit_id: str, staff: PageStaff) -> HTMLResponse:
        """The next meeting's digest as it stands now, printable."""
        meeting = config.meetings.get(unit_id)
        if meeting is None or not staff.may_see_unit(unit_id):
            raise HTTPException(404, "Đơn vị chưa có lịch họp / No meeting schedule for this unit")
        content = await scheduler.preview(unit_id, meeting)
        return render("digest.html", staff, digest=content, preview=True)

    def mailbox_dir() -> Path:
        # The demo mailbox holds residents' addresses: it exists only without SMTP, never in production.
        if not settings.embedded_mailbox or settings.env == "production":
            raise HTTPException(404, "Không có hộp thư / No mailbox")
        return settings.mailbox_dir

    # The demo mailbox needs no sign-in: it exists only in development, where whoever runs
    # the demo opens it to see what residents and members would receive.
    @router.get("/mail", response_class=HTMLResponse)
    async def mailbox() -> HTMLResponse:
        entries = mailbox_entries(mailbox_dir())
        return render("mailbox.html", None, entries=entries)

    @router.get("/mail/{name}", response_class=HTMLResponse)
    async def mail(name: str) -> HTMLResponse:
        found = read_mailbox_text(mailbox_dir(), name)
        if found is None:
            raise HTTPException(404, "Không có thư này / No such message")
        headers, text = found
        return render("message.html", None, name=name, headers=headers, text=text)

    @router.get("/mail/{name}/raw")
    async def raw_mail(name: str) -> FileResponse:
        directory = mailbox_dir()
        if read_mailbox_text(directory, name) is None:
            raise HTTPException(404, "Không có thư này / No such message")
        return FileResponse(directory / name, media_type="message/rfc822", filename=name)

    return router
