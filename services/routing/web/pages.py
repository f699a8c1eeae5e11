"""The member workspace: sign-in, my cases, one case with the actions the signed-in person may
take, and time away. Server-rendered, no JavaScript, phone first, Vietnamese first (`?lang=en`,
remembered in a cookie). Templates autoescape everything: a resident's text is never HTML.

The session is the staff token in the `petitions_staff` cookie (HttpOnly, SameSite=Lax, Secure
in production), the same one every service reads. Every cookie-authenticated POST carries a
CSRF token derived from that token with the service secret, and its Origin (or Referer), when
sent, must be one of the configured service URLs. Wrong passwords are throttled per username
and client address (`actions.SignInThrottle`, in memory per replica).

Every action calls `services.routing.actions`, as the JSON API does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import RowMapping

from services.routing import models
from services.routing.actions import (
    ActionError,
    CaseActions,
    CaseNotFound,
    InvalidInput,
    eligible_assignees,
)
from services.routing.cases import Organisation
from services.routing.lifecycle import OPEN, STATUS_WORDS
from services.routing.permissions import ACTIONS
from services.routing.problems import http_status
from services.routing.settings import Settings
from services.routing.web.i18n import (
    DECLINE_REASONS,
    HISTORY_WORDS,
    Lang,
    pick,
    rung_words,
    text,
)
from shared.auth import SESSION_COOKIE, InvalidTokenError, Staff, issue_token, read_token
from shared.events.routing import DeclineReason

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LANG_COOKIE = "lang"
CSRF_FIELD = "csrf"
MAX_FORM_BYTES = 64 * 1024
SESSION_TTL = timedelta(hours=12)


def local_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def build_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["local_time"] = local_time
    return env


def choose_language(request: Request) -> tuple[Lang, bool]:
    """`?lang=` wins and is remembered in a cookie; then the cookie; Vietnamese by default."""
    asked = request.query_params.get("lang")
    if asked in ("vi", "en"):
        return ("en" if asked == "en" else "vi"), True
    return ("en" if request.cookies.get(LANG_COOKIE) == "en" else "vi"), False


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body of at most MAX_FORM_BYTES (first value of each field)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


class Guard:
    """Where a signed-in request may come from, and where sign-in may send the browser."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.secret_key.get_secret_value().encode()
        self.bases = [
            u.rstrip("/") for u in (settings.intake_url, settings.routing_url, settings.notify_url)
        ]
        self.origins = frozenset(origin_of(u) for u in self.bases)

    def csrf(self, session_token: str) -> str:
        """A per-session token: forging it needs the service secret, reading it needs the page."""
        return hmac.new(self._secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()

    def same_site(self, request: Request) -> bool:
        """The Origin (else the Referer), when the browser sends one, is one of our services.
        A browser sends `Origin: null` for opaque origins: that is foreign too."""
        origin = request.headers.get("origin")
        if origin is not None:
            return origin.lower() in self.origins
        referer = request.headers.get("referer")
        if referer is not None:
            return origin_of(referer) in self.origins
        return True

    def check(self, request: Request, form: Mapping[str, str], session_token: str) -> bool:
        sent = form.get(CSRF_FIELD, "")
        return self.same_site(request) and hmac.compare_digest(sent, self.csrf(session_token))

    def safe_next(self, value: str | None) -> str | None:
        """A relative path on this service, or a URL on one of the configured services; never
        anything else (no open redirect)."""
        if not value or any(c in value for c in "\\\r\n\t") or len(value) > 2000:
            return None
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc:
            return value if value.startswith("/") and not value.startswith("//") else None
        for base in self.bases:
            b = urlsplit(base)
            if (
                parts.scheme.lower() == b.scheme.lower()
                and parts.netloc.lower() == b.netloc.lower()
                and parts.path.startswith(b.path)
            ):
                return value
        return None


def workspace_router(actions: CaseActions, settings: Settings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = build_templates()
    guard = Guard(settings)
    secret = settings.secret_key.get_secret_value()
    secure = settings.env == "production"
    # Forms post here only; sign-in may then redirect to another of our services, which
    # Chromium checks against form-action too.
    security_headers = {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        f"form-action 'self' {' '.join(sorted(guard.origins))}; base-uri 'none'; "
        "frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        # Same-origin only: a POST then carries our Origin, and nothing leaks to other sites.
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }

    def session(request: Request) -> tuple[Staff, str] | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        try:
            return read_token(token, secret=secret), token
        except InvalidTokenError:
            return None

    def to_signin(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)

    def render(
        request: Request,
        name: str,
        *,
        status: int = 200,
        who: tuple[Staff, str] | None = None,
        here: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """`here` is the page to reload in the other language when `request` was a POST."""
        lang, remember = choose_language(request)
        other = "vi" if lang == "en" else "en"
        if request.method == "GET":
            switch_url = str(request.url.include_query_params(lang=other))
        else:
            target = here or "/cases"
            switch_url = f"{target}{'&' if '?' in target else '?'}lang={other}"

        def t(key: str) -> str:
            return text(key, lang)

        staff, token = who if who else (None, "")
        html = templates.get_template(name).render(
            lang=lang,
            t=t,
            switch_url=switch_url,
            staff=staff,
            csrf=guard.csrf(token) if token else "",
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=security_headers)
        if remember:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="lax"
            )
        return response

    def message(request: Request, status: int, key: str, **context: Any) -> HTMLResponse:
        lang, _ = choose_language(request)
        return render(request, "message.html", status=status, message=text(key, lang), **context)

    def refused(request: Request, who: tuple[Staff, str] | None) -> HTMLResponse:
        return message(request, 403, "forbidden", who=who)

    @router.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/cases" if session(request) else "/signin", status_code=303)

    @router.get("/signin")
    async def signin_form(request: Request) -> Response:
        target = guard.safe_next(request.query_params.get("next"))
        if session(request):
            return RedirectResponse(target or "/cases", status_code=303)
        return render(request, "signin.html", next=target or "", username="", error=None)

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormTooLarge:
            return message(request, 413, "too_large")
        if not guard.same_site(request):
            return refused(request, None)
        target = guard.safe_next(form.get("next"))
        username = form.get("username", "").strip()[:100]
        try:
            staff = await actions.sign_in(
                username=username,
                password=form.get("password", ""),
                client=request.client.host if request.client else "",
            )
        except ActionError as exc:
            return render(
                request,
                "signin.html",
                here=f"/signin?next={quote(target, safe='')}" if target else "/signin",
                status=http_status(exc) if http_status(exc) != 401 else 400,
                next=target or "",
                username=username,
                error=exc,
            )
        response = RedirectResponse(target or "/cases", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            issue_token(staff, secret=secret, ttl=SESSION_TTL),
            max_age=int(SESSION_TTL.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        who = session(request)
        try:
            form = await read_form(request)
        except FormTooLarge:
            return message(request, 413, "too_large")
        if who is not None and not guard.check(request, form, who[1]):
            return refused(request, who)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure
        )
        return response

    @router.get("/cases")
    async def case_list(request: Request) -> Response:
        who = session(request)
        if who is None:
            return to_signin(request)
        staff = who[0]
        lang, _ = choose_language(request)
        may_see_unit = staff.is_admin or staff.role == "leader"
        scope: Literal["mine", "unit"] = (
            "unit" if request.query_params.get("scope") == "unit" and may_see_unit else "mine"
        )
        wanted = request.query_params.get("status", "open")
        if wanted == "all":
            statuses = None
        elif wanted in STATUS_WORDS:
            statuses = [wanted]
        else:
            wanted, statuses = "open", sorted(OPEN)
        rows, org = await actions.list_cases(staff, scope=scope, statuses=statuses, limit=500)
        now = actions.clock.now()
        far = datetime.max.replace(tzinfo=UTC)
        rows.sort(key=lambda r: (r["status"] not in OPEN, r["due_at"] or far))
        names = await unit_names()
        return render(
            request,
            "cases.html",
            who=who,
            scope=scope,
            may_see_unit=may_see_unit,
            wanted=wanted,
            statuses=[(s, pick(w, lang)) for s, w in STATUS_WORDS.items()],
            cases=[summary(r, org, names, now, lang) for r in rows],
        )

    async def unit_names() -> dict[str, str]:
        u = models.units
        async with actions.engine.connect() as conn:
            return {row.id: row.name for row in (await conn.execute(u.select())).all()}

    async def category_name(category_id: str, lang: Lang) -> str:
        c = models.categories
        async with actions.engine.connect() as conn:
            row = (await conn.execute(c.select().where(c.c.id == category_id))).first()
        if row is None:
            return category_id
        return str(row.name_en if lang == "en" else row.name_vi)

    def summary(
        case: RowMapping, org: Organisation, names: dict[str, str], now: datetime, lang: Lang
    ) -> dict[str, Any]:
        holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
        return {
            "id": case["id"],
            "title": case["title"],
            "reference": case["reference"],
            "status": pick(STATUS_WORDS.get(case["status"], (case["status"],) * 2), lang),
            "open": case["status"] in OPEN,
            "overdue": is_overdue(case, now),
            "due_at": case["due_at"],
            "ack_due_at": case["ack_due_at"] if case["status"] == "assigned" else None,
            "unit": names.get(case["unit_id"], case["unit_id"]),
            "rung": rung_words(case["rung"], lang),
            "holder": holder.name if holder else None,
        }

    async def case_page(
        request: Request,
        who: tuple[Staff, str],
        case_id: str,
        *,
        status: int = 200,
        error: ActionError | None = None,
        values: Mapping[str, str] | None = None,
        failed: str | None = None,
    ) -> Response:
        staff = who[0]
        lang, _ = choose_language(request)
        try:
            view = await actions.view(staff, case_id)
        except CaseNotFound:
            return message(request, 404, "not_found", who=who)
        case, org = view.case, view.org
        names = await unit_names()
        holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
        st = case["status"]
        can = {action: action in view.allowed for action in ACTIONS}
        assignees = []
        if can["reassign"]:
            assignees = [
                {"id": c.member_id, "label": f"{c.name} ({names.get(c.unit_id, c.unit_id)})"}
                for c in eligible_assignees(case, org)
            ]
        members = {c.member_id: c.name for c in org.candidates}
        done = request.query_params.get("done", "")
        notice = text(f"done_{done}", lang) if f"done_{done}" in _DONE_KEYS else None
        return render(
            request,
            "case.html",
            status=status,
            who=who,
            here=f"/cases/{case['id']}",
            case=case,
            status_words=pick(STATUS_WORDS.get(st, (st, st)), lang),
            rung=rung_words(case["rung"], lang),
            holder=holder.name if holder else None,
            unit=names.get(case["unit_id"], case["unit_id"]),
            category=await category_name(case["category_id"], lang),
            overdue=is_overdue(case, actions.clock.now()),
            can=can,
            any_action=any(can.values()),
            assignees=assignees,
            reasons=[(k, pick(v, lang)) for k, v in DECLINE_REASONS.items()],
            notes=[
                {
                    "who": members.get(n["member_id"], n["member_id"]),
                    "at": n["at"],
                    "text": n["note"],
                }
                for n in view.notes
            ],
            history=[history_line(h, members, lang) for h in view.history],
            notice=notice,
            error=error,
            other_lang_error=(error.en if lang == "vi" else error.vi) if error else None,
            values=values or {},
            failed=failed or "",
        )

    @router.get("/cases/{case_id}")
    async def case_detail(request: Request, case_id: str) -> Response:
        who = session(request)
        if who is None:
            return to_signin(request)
        return await case_page(request, who, case_id)

    async def perform(staff: Staff, case_id: str, action: str, form: Mapping[str, str]) -> bool:
        """Run the named action; False when there is no such action."""
        if action == "accept":
            await actions.accept(staff, case_id=case_id)
        elif action == "note":
            await actions.add_note(staff, case_id=case_id, note=form.get("note", ""))
        elif action == "resolve":
            await actions.resolve(staff, case_id=case_id, explanation=form.get("explanation", ""))
        elif action == "decline":
            code = form.get("reason_code", "")
            if code not in DECLINE_REASONS:
                raise InvalidInput("Vui lòng chọn lý do.", "Please choose a reason.")
            await actions.decline(
                staff,
                case_id=case_id,
                reason_code=cast(DeclineReason, code),
                comment=form.get("comment"),
            )
        elif action == "ask":
            await actions.ask(staff, case_id=case_id, question=form.get("question", ""))
        elif action == "reassign":
            await actions.reassign(staff, case_id=case_id, member_id=form.get("member_id") or None)
        elif action == "escalate":
            await actions.escalate(staff, case_id=case_id, comment=form.get("comment"))
        elif action == "take-over":
            await actions.take_over(staff, case_id=case_id)
        elif action == "reject":
            await actions.reject(staff, case_id=case_id, reason=form.get("reason", ""))
        else:
            return False
        return True

    @router.post("/cases/{case_id}/{action}")
    async def case_action(request: Request, case_id: str, action: str) -> Response:
        who = session(request)
        if who is None:
            return RedirectResponse(
                f"/signin?next={quote(f'/cases/{case_id}', safe='')}", status_code=303
            )
        try:
            form = await read_form(request)
        except FormTooLarge:
            return message(request, 413, "too_large", who=who)
        if not guard.check(request, form, who[1]):
            return refused(request, who)
        try:
            known = await perform(who[0], case_id, action, form)
        except ActionError as exc:
            if isinstance(exc, CaseNotFound):
                return message(request, 404, "not_found", who=who)
            return await case_page(
                request,
                who,
                case_id,
                status=http_status(exc),
                error=exc,
                values=form,
                failed=action,
            )
        if not known:
            return message(request, 404, "not_found", who=who)
        return RedirectResponse(f"/cases/{case_id}?done={action}", status_code=303)

    async def absence_page(
        request: Request,
        who: tuple[Staff, str],
        *,
        status: int = 200,
        error: str | None = None,
        values: Mapping[str, str] | None = None,
    ) -> Response:
        lang, _ = choose_language(request)
        row = await actions.member(who[0].member_id or "")
        done = request.query_params.get("done", "")
        notice = text(f"done_{done}", lang) if done in ("absence", "back") else None
        return render(
            request,
            "absence.html",
            status=status,
            who=who,
            here="/me/absence",
            away_from=row["away_from"] if row else None,
            away_until=row["away_until"] if row else None,
            error=error,
            values=values or {},
            notice=notice,
        )

    @router.get("/me/absence")
    async def absence(request: Request) -> Response:
        who = session(request)
        if who is None:
            return to_signin(request)
        return await absence_page(request, who)

    @router.post("/me/absence")
    async def set_absence(request: Request) -> Response:
        who = session(request)
        if who is None:
            return to_signin(request)
        try:
            form = await read_form(request)
        except FormTooLarge:
            return message(request, 413, "too_large", who=who)
        if not guard.check(request, form, who[1]):
            return refused(request, who)
        lang, _ = choose_language(request)
        staff = who[0]
        back = "back" in form
        start = parse_day(form.get("from", ""))
        end = parse_day(form.get("until", "")) if form.get("until", "").strip() else None
        if not back and (start is None or (form.get("until", "").strip() and end is None)):
            return await absence_page(
                request, who, status=422, error=text("bad_date", lang), values=form
            )
        try:
            if back:
                await actions.set_absence(
                    staff, member_id=staff.member_id or "", from_=None, until=None
                )
            else:
                assert start is not None
                # Whole local days: away from the start of the first, back after the last.
                await actions.set_absence(
                    staff,
                    member_id=staff.member_id or "",
                    from_=datetime.combine(start, time(), LOCAL_TZ),
                    until=datetime.combine(end + timedelta(days=1), time(), LOCAL_TZ)
                    if end
                    else None,
                )
        except ActionError as exc:
            return await absence_page(
                request, who, status=http_status(exc), error=exc.text(lang), values=form
            )
        return RedirectResponse(
            f"/me/absence?done={'back' if back else 'absence'}", status_code=303
        )

    return router


_DONE_KEYS = frozenset(
    f"done_{a}"
    for a in (
        "accept",
        "note",
        "resolve",
        "decline",
        "ask",
        "reassign",
        "escalate",
        "take-over",
        "reject",
    )
)


def is_overdue(case: RowMapping, now: datetime) -> bool:
    if case["status"] not in OPEN:
        return False
    if case["flag"] in ("overdue", "overdue_top"):
        return True
    return case["due_at"] is not None and case["due_at"] < now


# The text a person wrote, by history kind.
_SAID = {
    "resolved": "explanation",
    "rejected": "reason",
    "question_asked": "question",
    "resident_answered": "answer",
    "reopened": "comment",
    "escalation_requested": "comment",
}


def history_line(
    entry: Mapping[str, Any], members: Mapping[str, str], lang: Lang
) -> dict[str, Any]:
    """One history entry in plain words: when, what, who, and what was written."""
    kind = entry["kind"]
    detail = entry.get("detail") or {}
    what = pick(HISTORY_WORDS.get(kind, (kind, kind)), lang)
    said: str | None = None
    if kind == "assigned" and entry.get("member_id"):
        what = f"{what}: {members.get(entry['member_id'], entry['member_id'])}"
        if entry.get("rung") is not None:
            what += f" ({rung_words(int(entry['rung']), lang)})"
    elif kind == "escalated":
        what += f" ({detail.get('from_rung')} → {detail.get('to_rung')})"
        said = detail.get("comment")
    elif kind == "declined":
        code = detail.get("reason_code")
        if code in DECLINE_REASONS:
            what = f"{what}: {pick(DECLINE_REASONS[code], lang)}"
        said = detail.get("comment")
    elif kind in _SAID:
        value = detail.get(_SAID[kind])
        said = value if isinstance(value, str) and value else None
    return {"at": entry["at"], "what": what, "actor": entry.get("actor"), "said": said}
