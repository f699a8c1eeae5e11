"""The resident's pages: work without JavaScript, small enough for a slow phone, Vietnamese
first. Templates autoescape everything; nothing a resident wrote is ever rendered as HTML."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.intake import store
from services.intake.api import read_limited_body
from services.intake.catalog import Catalog
from services.intake.petitions import (
    InvalidSubmission,
    status_label,
    tracking_url,
    validate_comment,
    validate_submission,
)
from services.intake.web.i18n import Lang, text
from shared.runtime import Runtime
from shared.web import ProblemError

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
LANG_COOKIE = "lang"
_CHECKED = frozenset({"on", "true", "1", "yes"})
# No scripts at all; inline styles only; forms post back here.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # The tracking token is in the URL: never hand it to another site.
    "Referrer-Policy": "no-referrer",
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
    data: dict[str, Any] = {k: v for k, v in form.items() if k not in ("notify", "consent")}
    data["notify"] = form.get("notify", "").lower() in _CHECKED
    data["consent"] = form.get("consent", "").lower() in _CHECKED
    data["language"] = lang
    return data


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

    def form_context(lang: Lang) -> dict[str, Any]:
        units = [{"id": u.id, "label": catalog.path_name(u.id)} for u in catalog.selectable_units()]
        categories = [{"id": c.id, "label": c.name(lang)} for c in catalog.categories.values()]
        return {"units": units, "categories": categories}

    @router.get("/", response_class=HTMLResponse)
    async def form(request: Request) -> Response:
        lang, remember = choose_language(request)
        return render(
            request, "form.html", lang, remember, values={}, errors={}, **form_context(lang)
        )

    @router.post("/", response_class=HTMLResponse)
    async def submit(request: Request) -> Response:
        lang, remember = choose_language(request)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise ProblemError(
                415,
                "Cần gửi biểu mẫu / Send application/x-www-form-urlencoded",
                type_="urn:petitions:problem:media-type",
            )
        form_values = parse_form(await read_limited_body(request))
        try:
            submission = validate_submission(submission_data(form_values, lang), catalog)
        except InvalidSubmission as exc:
            errors: dict[str, list[str]] = {}
            for e in exc.errors:
                errors.setdefault(e.field, []).append(e.message)
            return render(
                request,
                "form.html",
                lang,
                remember,
                status=422,
                values=form_values,
                errors=errors,
                **form_context(lang),
            )
        receipt = await store.submit_petition(
            runtime.engine,
            submission=submission,
            now=runtime.clock.now(),
            public_url=public_url,
        )
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
            notice=notice
            or (text("feedback_thanks", lang) if request.query_params.get("feedback") else None),
            status_text=label_en if lang == "en" else label_vi,
            unit_name=catalog.path_name(row["unit_id"]),
            category_name=category.name(lang) if category else row["category_id"],
            can_give_feedback=row["status"] == "resolved",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/track/{token}", response_class=HTMLResponse)
    async def track(request: Request, token: str) -> Response:
        return await track_page(request, token)

    @router.post("/track/{token}/feedback", response_class=HTMLResponse)
    async def feedback(request: Request, token: str) -> Response:
        lang, _ = choose_language(request)
        form_values = parse_form(await read_limited_body(request))
        answer = form_values.get("resolved")
        if answer not in ("yes", "no"):
            return await track_page(
                request, token, status=422, notice=text("feedback_refused", lang)
            )
        try:
            comment = validate_comment(form_values.get("comment"))
            await store.give_feedback(
                runtime.engine,
                token=token,
                resolved=answer == "yes",
                comment=comment,
                now=runtime.clock.now(),
            )
        except InvalidSubmission as exc:
            return await track_page(
                request, token, status=422, notice=" ".join(e.message for e in exc.errors)
            )
        except LookupError:
            return await track_page(request, token)
        except store.FeedbackNotExpected:
            return await track_page(
                request, token, status=409, notice=text("feedback_refused", lang)
            )
        runtime.relay.wake()
        return RedirectResponse(
            f"/track/{token}?feedback=1", status_code=303, headers=_SECURITY_HEADERS
        )

    return router
