"""Time away: while a member is away they get no new cases, and their open cases go to the
unit leader when the absence starts. Whole local days: away from the start of the first day,
back after the last."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.routing.actions import ActionError
from services.routing.deps import SignedIn
from services.routing.problems import http_status
from services.routing.web.pages import Workspace, WorkspaceDep
from shared.webkit.forms import FormRefused
from shared.webkit.i18n import choose_language
from shared.webkit.pages import see_other
from shared.webkit.session import StaffSession
from shared.webkit.times import LOCAL_TZ

router = APIRouter(include_in_schema=False)


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def away_period(form: Mapping[str, str]) -> tuple[datetime, datetime | None] | None:
    """The absence a form asks for, from the start of its first local day to the end of its
    last (open-ended without one); None when a date cannot be read."""
    start = parse_day(form.get("from", ""))
    until_text = form.get("until", "").strip()
    end = parse_day(until_text) if until_text else None
    if start is None or (until_text and end is None):
        return None
    begins = datetime.combine(start, time(), LOCAL_TZ)
    ends = datetime.combine(end + timedelta(days=1), time(), LOCAL_TZ) if end else None
    return begins, ends


async def absence_page(
    request: Request,
    ws: Workspace,
    session: StaffSession,
    *,
    status: int = 200,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
) -> Response:
    lang, _ = choose_language(request)
    row = await ws.actions.member(session.staff.member_id or "")
    done = request.query_params.get("done", "")
    return ws.render(
        request,
        "absence.html",
        session=session,
        status=status,
        here="/me/absence",
        away_from=row["away_from"] if row else None,
        away_until=row["away_until"] if row else None,
        error=error,
        values=values or {},
        notice=ws.kit.text(f"done_{done}", lang) if done in ("absence", "back") else None,
    )


@router.get("/me/absence")
async def absence(request: Request, ws: WorkspaceDep, session: SignedIn) -> Response:
    return await absence_page(request, ws, session)


@router.post("/me/absence")
async def set_absence(request: Request, ws: WorkspaceDep, session: SignedIn) -> Response:
    """Set the time away, or (`back`) say the member is back."""
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key, session)
    if not ws.guard.check(request, form, session.token):
        return ws.refused(request, session)
    lang, _ = choose_language(request)
    staff = session.staff
    back = "back" in form
    period = None if back else away_period(form)
    if not back and period is None:
        return await absence_page(
            request, ws, session, status=422, error=ws.kit.text("bad_date", lang), values=form
        )
    begins, ends = period or (None, None)
    try:
        await ws.actions.set_absence(
            staff, member_id=staff.member_id or "", from_=begins, until=ends
        )
    except ActionError as exc:
        return await absence_page(
            request, ws, session, status=http_status(exc), error=exc.text(lang), values=form
        )
    return see_other(f"/me/absence?done={'back' if back else 'absence'}")
