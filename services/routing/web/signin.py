"""Staff sign-in and sign-out on the pages, and the session that keeps them signed in.

Signing in opens a session (`services.routing.sessions`) and sets two HttpOnly, SameSite=Lax
cookies (Secure in production): `petitions_staff`, the short-lived access token every service
reads, and `petitions_refresh`, which only routing reads. When the access token has expired,
`RefreshSession` mints the next one from the session on whatever request comes to routing, so
the person notices nothing; the other services' pages send the browser to routing's sign-in
page, which (refreshed on the way) sends it straight back. Wrong passwords are throttled per
username and per client address in the database every replica shares; sign-in sends the
browser back only to a page of one of our services (no open redirect).
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.routing.actions import ActionError
from services.routing.deps import (
    OptionalSession,
    SessionsDep,
    SettingsDep,
    client_address,
    user_agent,
)
from services.routing.errors import TooManyAttempts
from services.routing.problems import http_status
from services.routing.sessions import Issued, Sessions
from services.routing.web.pages import WorkspaceDep
from shared.auth import REFRESH_COOKIE, SESSION_COOKIE, InvalidTokenError, read_token
from shared.webkit.forms import FormRefused
from shared.webkit.pages import see_other

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)


def set_session_cookies(response: Response, issued: Issued, *, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        issued.access_token,
        max_age=int(issued.access_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        expires=issued.expires_at,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookies(response: Response, *, secure: bool) -> None:
    for name in (SESSION_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)


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
async def signin(
    request: Request, ws: WorkspaceDep, settings: SettingsDep, sessions: SessionsDep
) -> Response:
    """Sign in from a page of ours; a refusal keeps the username and says why in both
    languages (the page's first), with `Retry-After` when there were too many failures."""
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
            client=client_address(request),
            user_agent=user_agent(request),
        )
    except ActionError as exc:
        page = ws.render(
            request,
            "signin.html",
            here=f"/signin?next={quote(target, safe='')}" if target else "/signin",
            status=400 if http_status(exc) == 401 else http_status(exc),
            next=target or "",
            username=username,
            error=exc,
        )
        if isinstance(exc, TooManyAttempts):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    response = see_other(target or "/cases")
    set_session_cookies(response, await sessions.open(staff), secure=settings.env == "production")
    return response


@router.post("/signout")
async def signout(
    request: Request,
    ws: WorkspaceDep,
    settings: SettingsDep,
    sessions: SessionsDep,
    session: OptionalSession,
) -> Response:
    """End the session everywhere: its tokens are refused by every service from now on."""
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key)
    if session is not None and not ws.guard.check(request, form, session.token):
        return ws.refused(request, session)
    if session is not None:
        await sessions.sign_out(session.staff.session_id)
    response = see_other("/signin")
    clear_session_cookies(response, secure=settings.env == "production")
    return response


class RefreshSession:
    """Mints a new access token from the refresh cookie when the access cookie is missing,
    expired or of another session, before routing handles the request: the request then
    carries the new token and the answer sets it. A refresh cookie whose session has ended is
    cleared, so the person is asked to sign in."""

    def __init__(self, app: ASGIApp, *, sessions: Sessions, secure: bool) -> None:
        self.app = app
        self.sessions = sessions
        self.secure = secure

    def _current(self, access: str | None, refresh: str) -> bool:
        if not access:
            return False
        try:
            staff = read_token(access, secret=self.sessions.secret())
        except InvalidTokenError:
            return False
        return refresh.startswith(f"{staff.session_id}.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = b"; ".join(v for k, v in scope["headers"] if k == b"cookie").decode("latin-1")
        cookies = cookie_parser(raw)
        refresh = cookies.get(REFRESH_COOKIE)
        if not refresh or self._current(cookies.get(SESSION_COOKIE), refresh):
            await self.app(scope, receive, send)
            return
        try:
            issued = await self.sessions.refresh(refresh)
        except Exception as exc:
            # The database is away, say: the request goes on as it came (signed out, if its
            # token expired), and the page says what is wrong.
            log.warning("session_refresh_failed", error=type(exc).__name__)
            await self.app(scope, receive, send)
            return
        answer = Response()
        if issued is None:
            clear_session_cookies(answer, secure=self.secure)
        else:
            set_session_cookies(answer, issued, secure=self.secure)
            kept = [p for p in raw.split(";") if not p.strip().startswith(f"{SESSION_COOKIE}=")]
            kept.append(f" {SESSION_COOKIE}={issued.access_token}")
            headers = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
            headers.append((b"cookie", ";".join(kept).strip().encode("latin-1")))
            scope = {**scope, "headers": headers}
        set_cookies = [(k, v) for k, v in answer.raw_headers if k == b"set-cookie"]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *set_cookies]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)
