"""The resident's pages: work without JavaScript, small enough for a slow phone, Vietnamese
first. Templates autoescape everything; nothing a resident wrote is ever rendered as HTML.

A page speaks the resident's language only (errors included), and every failure the resident
can meet (a bad field, a body too large, a database outage) is a page that keeps what they
typed where it can, never a JSON problem.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake import store
from services.intake.catalog import Catalog
from services.intake.errors import UnknownTrackingLink
from services.intake.http import read_limited_body
from services.intake.petitions import (
    FieldError,
    InvalidSubmission,
    holder_label,
    resident_actions,
    status_label,
    submission_fingerprint,
    tracking_url,
    validate_comment,
    validate_submission,
)
from services.intake.web.i18n import Lang, field_label, text
from shared.runtime import Runtime
from shared.web import ProblemError

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LANG_COOKIE = "lang"
SUBMISSION_KEY_FIELD = "submission_key"
_SUBMISSION_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CHECKED = frozenset({"on", "true", "1", "yes"})
# No scripts at all; inline styles only; forms post back here.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # The tracking token is in the URL: never hand it to another site.
    "Referrer-Policy": "no-referrer",
}
# What a redirect back to the tracking page tells the resident (`?done=…`).
_DONE_NOTICES = {
    "feedback": "feedback_thanks",
    "answered": "answered",
    "escalated": "escalated_notice",
    "withdrawn": "withdrawn_notice",
    "stopped": "stopped_notice",
    "erased": "erased_notice",
}


def local_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


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


def parse_form(body: bytes) -> dict[str, str]:
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def submission_data(form: Mapping[str, str], lang: Lang) -> dict[str, Any]:
    """The form as the validator expects it: checkboxes as booleans, blanks as absent."""
    data: dict[str, Any] = {
        k: v for k, v in form.items() if k not in ("notify", "consent", SUBMISSION_KEY_FIELD)
    }
    data["notify"] = form.get("notify", "").lower() in _CHECKED
    data["consent"] = form.get("consent", "").lower() in _CHECKED
    data["language"] = lang
    return data


@dataclass(frozen=True)
class SummaryLine:
    """One line of the form's error summary: names its field and links to it."""

    field: str
    text: str


def form_errors(
    errors: list[FieldError], lang: Lang
) -> tuple[dict[str, list[str]], list[SummaryLine]]:
    """Messages per field, and the summary lines, in the page's language only."""
    by_field: dict[str, list[str]] = {}
    summary: list[SummaryLine] = []
    for e in errors:
        message = e.message_en if lang == "en" else e.message_vi
        by_field.setdefault(e.field, []).append(message)
        summary.append(SummaryLine(e.field, f"{field_label(e.field, lang)}: {message}"))
    return by_field, summary


class FormRefused(Exception):
    """A form post the page cannot read (too large, wrong media type): a friendly page."""

    def __init__(self, status: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body; an empty body (a form with no fields) needs no content type."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        body = await read_limited_body(request)
    except ProblemError as exc:
        raise FormRefused(exc.status, "too_large") from None
    if media != "application/x-www-form-urlencoded" and (media or body):
        raise FormRefused(415, "wrong_media")
    return parse_form(body)


def pages_router(runtime: Runtime, catalog: Catalog, public_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = build_templates()

    def render(
        request: Request, name: str, lang: Lang, remember: bool, status: int = 200, **context: Any
    ) -> HTMLResponse:
        def t(key: str) -> str:
            return text(key, lang)

        html = templates.get_template(name).render(
            lang=lang,
            other_lang="vi" if lang == "en" else "en",
            t=t,
            **{"path": request.url.path, **context},
        )
        response = HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)
        if remember:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=365 * 24 * 3600, httponly=True, samesite="lax"
            )
        return response

    def error_page(request: Request, status: int, message_key: str) -> HTMLResponse:
        lang, remember = choose_language(request)
        response = render(
            request, "error.html", lang, remember, status=status, message=text(message_key, lang)
        )
        if status == 503:
            response.headers["Retry-After"] = "5"
        return response

    def form_page(
        request: Request,
        *,
        values: Mapping[str, str],
        status: int = 200,
        errors: list[FieldError] | None = None,
        banner: str | None = None,
    ) -> HTMLResponse:
        lang, remember = choose_language(request)
        by_field, summary = form_errors(errors or [], lang)
        token = values.get(SUBMISSION_KEY_FIELD, "")
        if not _SUBMISSION_KEY_RE.match(token):
            token = secrets.token_urlsafe(24)
        units = [{"id": u.id, "label": catalog.path_name(u.id)} for u in catalog.selectable_units()]
        categories = [{"id": c.id, "label": c.name(lang)} for c in catalog.categories.values()]
        response = render(
            request,
            "form.html",
            lang,
            remember,
            status=status,
            values=values,
            errors=by_field,
            summary=summary,
            banner=banner,
            submission_key=token,
            units=units,
            categories=categories,
        )
        # A fresh token per rendering: the browser must not reuse a page from its cache.
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/", response_class=HTMLResponse)
    async def form(request: Request) -> Response:
        return form_page(request, values={})

    @router.post("/", response_class=HTMLResponse)
    async def submit(request: Request) -> Response:
        """Submit from the form. The hidden `form_token` makes a double click (or a resend after
        an outage) land on the same petition: the token, with what was submitted, is the
        submission's idempotency key."""
        lang, _ = choose_language(request)
        try:
            form_values = await read_form(request)
        except FormRefused as exc:
            return error_page(request, exc.status, exc.message_key)
        try:
            submission = validate_submission(submission_data(form_values, lang), catalog)
        except InvalidSubmission as exc:
            return form_page(request, values=form_values, status=422, errors=exc.errors)
        token = form_values.get(SUBMISSION_KEY_FIELD, "")
        key = (
            f"form:{token}:{submission_fingerprint(submission)}"
            if _SUBMISSION_KEY_RE.match(token)
            else None
        )
        try:
            receipt = await store.submit_petition(
                runtime.engine,
                submission=submission,
                now=runtime.clock.now(),
                public_url=public_url,
                idempotency_key=key,
            )
        except store.IdempotencyConflict:
            return error_page(request, 409, "already_sent")
        except Exception as exc:
            if not store.is_database_outage(exc):
                raise
            response = form_page(
                request, values=form_values, status=503, banner=text("unavailable", lang)
            )
            response.headers["Retry-After"] = "5"
            return response
        runtime.relay.wake()
        # Post/redirect/get: reloading the page the resident lands on never submits twice.
        return RedirectResponse(
            f"/track/{receipt.tracking_token}?new=1", status_code=303, headers=_SECURITY_HEADERS
        )

    async def track_page(
        request: Request, token: str, *, status: int = 200, notice: str | None = None
    ) -> Response:
        lang, remember = choose_language(request)
        row = await store.petition_by_token(runtime.engine, token)
        if row is None:
            return render(request, "not_found.html", lang, remember, status=404)
        category = catalog.categories.get(row["category_id"])
        label_vi, label_en = status_label(row["status"])
        done = _DONE_NOTICES.get(request.query_params.get("done", ""))
        if request.query_params.get("feedback"):
            done = "feedback_thanks"
        holder = holder_label(row["rung"]) if row["rung"] is not None else None
        timeline = row["timeline"]
        resolution = next(
            (i for i in timeline if i["event_id"] == row["resolution_event_id"]), None
        )
        rejection = next((i for i in reversed(timeline) if i["kind"] == "rejected"), None)
        response = render(
            request,
            "track.html",
            lang,
            remember,
            status=status,
            p=row,
            token=token,
            path=f"/track/{token}",
            tracking_url=tracking_url(public_url, token),
            is_new=request.query_params.get("new") == "1",
            notice=notice or (text(done, lang) if done else None),
            status_text=label_en if lang == "en" else label_vi,
            holder=(holder[1] if lang == "en" else holder[0]) if holder else None,
            unit_name=catalog.path_name(row["unit_id"]),
            category_name=category.name(lang) if category else row["category_id"],
            actions=resident_actions(row, runtime.clock.now()),
            resolution=resolution["detail"] if resolution else None,
            rejection=rejection["detail"] if rejection else None,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def back_to(token: str, done: str) -> Response:
        return RedirectResponse(
            f"/track/{token}?done={done}", status_code=303, headers=_SECURITY_HEADERS
        )

    Action = Callable[[dict[str, str]], Awaitable[str]]

    async def act(request: Request, token: str, action: Action, refused: str) -> Response:
        """Run a resident action from a form; a refusal comes back as the tracking page with a
        notice, in the page's language."""
        lang, _ = choose_language(request)
        try:
            form_values = await read_form(request)
        except FormRefused as exc:
            return error_page(request, exc.status, exc.message_key)
        try:
            done = await action(form_values)
        except InvalidSubmission as exc:
            _, summary = form_errors(exc.errors, lang)
            return await track_page(
                request, token, status=422, notice=" ".join(s.text for s in summary)
            )
        except UnknownTrackingLink:
            return await track_page(request, token)
        except (store.ActionNotAllowed, store.FeedbackNotExpected, store.EscalationRefused):
            return await track_page(request, token, status=409, notice=text(refused, lang))
        except Exception as exc:
            if store.is_database_outage(exc):
                return error_page(request, 503, "unavailable_short")
            raise
        runtime.relay.wake()
        return back_to(token, done)

    @router.get("/track/{token}", response_class=HTMLResponse)
    async def track(request: Request, token: str) -> Response:
        return await track_page(request, token)

    @router.post("/track/{token}/feedback", response_class=HTMLResponse)
    async def feedback(request: Request, token: str) -> Response:
        async def give(form_values: dict[str, str]) -> str:
            answer = form_values.get("resolved")
            if answer not in ("yes", "no"):
                raise store.FeedbackNotExpected("invalid")
            await store.give_feedback(
                runtime.engine,
                token=token,
                resolved=answer == "yes",
                comment=validate_comment(form_values.get("comment")),
                now=runtime.clock.now(),
            )
            return "feedback"

        return await act(request, token, give, "feedback_refused")

    @router.post("/track/{token}/answer", response_class=HTMLResponse)
    async def answer(request: Request, token: str) -> Response:
        async def send(form_values: dict[str, str]) -> str:
            try:
                question_id = uuid.UUID(form_values.get("question_id", ""))
            except ValueError:
                raise store.ActionNotAllowed("invalid", "other_question") from None
            text_ = validate_comment(form_values.get("answer"), field="answer", required=True)
            assert text_ is not None
            await store.answer_question(
                runtime.engine,
                token=token,
                question_id=question_id,
                answer=text_,
                now=runtime.clock.now(),
            )
            return "answered"

        return await act(request, token, send, "answer_refused")

    @router.post("/track/{token}/escalate", response_class=HTMLResponse)
    async def escalate(request: Request, token: str) -> Response:
        async def ask(form_values: dict[str, str]) -> str:
            await store.request_escalation(
                runtime.engine,
                token=token,
                comment=validate_comment(form_values.get("comment")),
                now=runtime.clock.now(),
            )
            return "escalated"

        return await act(request, token, ask, "escalate_refused")

    async def confirm_page(request: Request, token: str, action: str) -> Response:
        lang, remember = choose_language(request)
        row = await store.petition_by_token(runtime.engine, token)
        if row is None:
            return render(request, "not_found.html", lang, remember, status=404)
        response = render(
            request, "confirm.html", lang, remember, p=row, token=token, action=action
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/track/{token}/withdraw", response_class=HTMLResponse)
    async def withdraw_confirm(request: Request, token: str) -> Response:
        return await confirm_page(request, token, "withdraw")

    @router.post("/track/{token}/withdraw", response_class=HTMLResponse)
    async def withdraw(request: Request, token: str) -> Response:
        async def do(form_values: dict[str, str]) -> str:
            await store.withdraw(
                runtime.engine,
                token=token,
                reason=validate_comment(form_values.get("reason"), field="reason"),
                now=runtime.clock.now(),
            )
            return "withdrawn"

        return await act(request, token, do, "not_allowed")

    @router.post("/track/{token}/stop-updates", response_class=HTMLResponse)
    async def stop_updates(request: Request, token: str) -> Response:
        async def do(_: dict[str, str]) -> str:
            await store.stop_updates(runtime.engine, token=token, now=runtime.clock.now())
            return "stopped"

        return await act(request, token, do, "not_allowed")

    @router.get("/track/{token}/erase", response_class=HTMLResponse)
    async def erase_confirm(request: Request, token: str) -> Response:
        return await confirm_page(request, token, "erase")

    @router.post("/track/{token}/erase", response_class=HTMLResponse)
    async def erase(request: Request, token: str) -> Response:
        async def do(_: dict[str, str]) -> str:
            await store.erase_contact(runtime.engine, token=token, now=runtime.clock.now())
            return "erased"

        return await act(request, token, do, "not_allowed")

    return router
