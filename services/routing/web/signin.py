"""Staff sign-in and sign-out. The session is a short-lived staff token in an HttpOnly,
SameSite=Lax cookie (Secure in production) that every service reads. Wrong passwords are
throttled per username and client address (`actions.SignInThrottle`, in memory per replica);
sign-in sends the browser back only to a page of one of our services (no open redirect)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.routing.actions import ActionError
from services.routing.deps import OptionalSession, SettingsDep
from services.routing.problems import http_status
from services.routing.web.pages import WorkspaceDep
from shared.auth import SESSION_COOKIE, issue_token
from shared.webkit.forms import FormRefused
from shared.webkit.pages import see_other

router = APIRouter(include_in_schema=False)

SESSION_TTL = timedelta(hours=12)


@router.get("/")
async def home(session: OptionalSession) -> Response:
    return see_other("/cases" if session else "/signin")


@router.get("/signin")
async def signin_form(request: Request, ws: WorkspaceDep, session: OptionalSession) -> Response:
    target = ws.guard.safe_next(request.query_params.get("next"))
    if session:
        return see_other(target or "/cases")
    return ws.render(request, "signin.html", next=target or "", username="", error=None)


@router.post("/signin")
async def signin(request: Request, ws: WorkspaceDep, settings: SettingsDep) -> Response:
    """Sign in from a page of ours; a refusal keeps the username and says why in both
    languages (the page's first)."""
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key)
    if not ws.guard.same_site(request):
        return ws.refused(request, None)
    target = ws.guard.safe_next(form.get("next"))
    username = form.get("username", "").strip()[:100]
    try:
        staff = await ws.actions.sign_in(
            username=username,
            password=form.get("password", ""),
            client=request.client.host if request.client else "",
        )
    except ActionError as exc:
        return ws.render(
            request,
            "signin.html",
            here=f"/signin?next={quote(target, safe='')}" if target else "/signin",
            status=400 if http_status(exc) == 401 else http_status(exc),
            next=target or "",
            username=username,
            error=exc,
        )
    response = see_other(target or "/cases")
    response.set_cookie(
        SESSION_COOKIE,
        issue_token(staff, secret=settings.secret_key.get_secret_value(), ttl=SESSION_TTL),
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.env == "production",
        path="/",
    )
    return response


@router.post("/signout")
async def signout(
    request: Request, ws: WorkspaceDep, settings: SettingsDep, session: OptionalSession
) -> Response:
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key)
    if session is not None and not ws.guard.check(request, form, session.token):
        return ws.refused(request, session)
    response = see_other("/signin")
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.env == "production",
    )
    return response
