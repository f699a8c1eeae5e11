"""Account pages: change one's password, one's sign-in history, the members whose accounts a
leader or an administrator manages (their history, a one-time link to set a password), and the
page a one-time link opens, which sets a new password and signs the person in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from services.routing import models
from services.routing.accounts import may_manage, member_in_reach, signin_history
from services.routing.actions import ActionError
from services.routing.deps import (
    AccountsDep,
    SessionsDep,
    SettingsDep,
    SignedIn,
    client_address,
    user_agent,
)
from services.routing.errors import LinkInvalid, TooManyAttempts
from services.routing.problems import http_status
from services.routing.web.pages import Workspace, WorkspaceDep
from services.routing.web.signin import set_session_cookies
from shared import scope
from shared.webkit.forms import FormRefused
from shared.webkit.i18n import Lang, choose_language
from shared.webkit.pages import see_other
from shared.webkit.session import StaffSession

router = APIRouter(include_in_schema=False)


def _error(exc: ActionError, lang: Lang) -> dict[str, str]:
    """A refusal in the page's language, with the other beneath."""
    return {"first": exc.text(lang), "second": exc.vi if lang == "en" else exc.en}


async def password_page(
    request: Request,
    ws: Workspace,
    session: StaffSession,
    *,
    status: int = 200,
    error: Mapping[str, str] | None = None,
) -> Response:
    lang, _ = choose_language(request)
    done = request.query_params.get("done") == "1"
    return ws.render(
        request,
        "password.html",
        session=session,
        status=status,
        here="/me/password",
        error=error,
        notice=ws.kit.text("password_changed", lang) if done else None,
    )


@router.get("/me/password")
async def password_form(request: Request, ws: WorkspaceDep, session: SignedIn) -> Response:
    return await password_page(request, ws, session)


@router.post("/me/password")
async def change_password(
    request: Request, ws: WorkspaceDep, session: SignedIn, accounts: AccountsDep
) -> Response:
    """Change one's password; the person's other sessions end, this one goes on."""
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key, session)
    if not ws.guard.check(request, form, session.token):
        return ws.refused(request, session)
    lang, _ = choose_language(request)
    if form.get("new_password", "") != form.get("repeat_password", ""):
        return await password_page(
            request, ws, session, status=422, error=_said(ws, "passwords_differ", lang)
        )
    try:
        await accounts.change_password(
            session.staff,
            current=form.get("current_password", ""),
            new=form.get("new_password", ""),
            client=client_address(request),
            user_agent=user_agent(request),
        )
    except ActionError as exc:
        page = await password_page(
            request, ws, session, status=http_status(exc), error=_error(exc, lang)
        )
        if isinstance(exc, TooManyAttempts):
            page.headers["Retry-After"] = str(exc.retry_after)
        return page
    return see_other("/me/password?done=1")


def _said(ws: Workspace, key: str, lang: Lang) -> dict[str, str]:
    """A sentence of the catalogue in the page's language, with the other beneath."""
    other: Lang = "vi" if lang == "en" else "en"
    return {"first": ws.kit.text(key, lang), "second": ws.kit.text(key, other)}


@router.get("/me/signins")
async def my_signins(
    request: Request, ws: WorkspaceDep, session: SignedIn, accounts: AccountsDep
) -> Response:
    rows = await signin_history(accounts.engine, session.staff.member_id or "")
    return ws.render(
        request,
        "signins.html",
        session=session,
        here="/me/signins",
        who=session.staff.name or session.staff.username,
        attempts=rows,
    )


async def _members_in_reach(ws: Workspace, session: StaffSession) -> list[Any]:
    m = models.members
    staff = session.staff
    async with ws.actions.engine.connect() as conn:
        rows = (await conn.execute(select(m).order_by(m.c.unit_id, m.c.name))).mappings().all()
    return [
        r
        for r in rows
        if (staff.is_admin or scope.may_see_unit(staff, r["unit_id"])) and may_manage(staff, r)
    ]


@router.get("/members")
async def members(request: Request, ws: WorkspaceDep, session: SignedIn) -> Response:
    """The accounts a leader (their unit and below) or an administrator (all) manages."""
    if not (session.staff.is_admin or session.staff.role == "leader"):
        return ws.message(request, 403, "forbidden", session)
    lang, _ = choose_language(request)
    sent = request.query_params.get("sent", "")
    return ws.render(
        request,
        "members.html",
        session=session,
        here="/members",
        members=await _members_in_reach(ws, session),
        notice=ws.kit.text("link_sent", lang) if sent else None,
        error=None,
        sent=sent,
    )


@router.get("/members/{member_id}/signins")
async def member_signins(
    member_id: str,
    request: Request,
    ws: WorkspaceDep,
    session: SignedIn,
    accounts: AccountsDep,
) -> Response:
    try:
        member = await member_in_reach(accounts.engine, session.staff, member_id)
    except ActionError as exc:
        return ws.message(request, http_status(exc), "forbidden", session)
    rows = await signin_history(accounts.engine, member_id)
    return ws.render(
        request,
        "signins.html",
        session=session,
        here=f"/members/{member_id}/signins",
        who=member["name"],
        attempts=rows,
    )


@router.post("/members/{member_id}/password-link")
async def send_link(
    member_id: str,
    request: Request,
    ws: WorkspaceDep,
    session: SignedIn,
    accounts: AccountsDep,
) -> Response:
    """Email the member a one-time link to set their password."""
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key, session)
    if not ws.guard.check(request, form, session.token):
        return ws.refused(request, session)
    kind: Literal["invite", "reset"] = "invite" if form.get("kind") == "invite" else "reset"
    lang, _ = choose_language(request)
    try:
        await accounts.request_link(session.staff, member_id=member_id, kind=kind)
    except ActionError as exc:
        return ws.render(
            request,
            "members.html",
            session=session,
            status=http_status(exc),
            here="/members",
            members=await _members_in_reach(ws, session),
            error=_error(exc, lang),
            notice=None,
            sent="",
        )
    return see_other(f"/members?sent={member_id}")


# -- the page a one-time link opens ---------------------------------------------------------


async def link_page(
    request: Request,
    ws: Workspace,
    accounts: AccountsDep,
    token: str,
    *,
    status: int = 200,
    error: Mapping[str, str] | None = None,
) -> Response:
    lang, _ = choose_language(request)
    try:
        link = await accounts.link_for(token)
    except LinkInvalid as exc:
        return ws.render(
            request,
            "link.html",
            status=410,
            here=request.url.path,
            link=None,
            error=_error(exc, lang),
        )
    return ws.render(
        request,
        "link.html",
        status=status,
        here=request.url.path,
        link=link,
        token=token,
        error=error,
    )


@router.get("/account/link/{token}")
async def open_link(
    token: str, request: Request, ws: WorkspaceDep, accounts: AccountsDep
) -> Response:
    """The form to set a new password; opening it spends nothing (mail scanners open links)."""
    response = await link_page(request, ws, accounts, token)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/account/link/{token}")
async def use_link(
    token: str,
    request: Request,
    ws: WorkspaceDep,
    accounts: AccountsDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    """Set the password (the policy applies), spend the link, sign the person in."""
    try:
        form = await ws.read_form(request)
    except FormRefused as exc:
        return ws.message(request, exc.status, exc.message_key)
    # No session yet: the token in the address is what proves this form is ours.
    if not ws.guard.same_site(request):
        return ws.refused(request, None)
    lang, _ = choose_language(request)
    if form.get("new_password", "") != form.get("repeat_password", ""):
        return await link_page(
            request, ws, accounts, token, status=422, error=_said(ws, "passwords_differ", lang)
        )
    try:
        staff = await accounts.use_link(token, new=form.get("new_password", ""))
    except LinkInvalid:
        return await link_page(request, ws, accounts, token)
    except ActionError as exc:
        return await link_page(
            request, ws, accounts, token, status=http_status(exc), error=_error(exc, lang)
        )
    response = see_other("/cases")
    set_session_cookies(response, await sessions.open(staff), secure=settings.env == "production")
    response.headers["Cache-Control"] = "no-store"
    return response
