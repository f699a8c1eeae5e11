"""The submission form: a resident sends a petition from a phone in under a minute, with no
account. A refused field keeps everything typed; a database outage keeps it too."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.intake import store
from services.intake.catalog import Catalog
from services.intake.deps import CatalogDep, SettingsDep
from services.intake.errors import FieldError, IdempotencyConflict, InvalidSubmission
from services.intake.petitions import (
    Submission,
    submission_fingerprint,
    validate_submission,
)
from services.intake.web.pages import error_page, form_errors, read_page_form, refused_page
from shared.db import is_database_outage
from shared.web import AppRuntime
from shared.webkit.forms import FormRefused
from shared.webkit.i18n import Lang, choose_language
from shared.webkit.pages import PageKit, Pages, see_other

router = APIRouter(include_in_schema=False)

SUBMISSION_KEY_FIELD = "submission_key"
_SUBMISSION_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CHECKED = frozenset({"on", "true", "1", "yes"})


def submission_data(form: Mapping[str, str], lang: Lang) -> dict[str, Any]:
    """The form as the validator expects it: checkboxes as booleans, blanks as absent."""
    data: dict[str, Any] = {
        k: v for k, v in form.items() if k not in ("notify", "consent", SUBMISSION_KEY_FIELD)
    }
    data["notify"] = form.get("notify", "").lower() in _CHECKED
    data["consent"] = form.get("consent", "").lower() in _CHECKED
    data["language"] = lang
    return data


def form_page(
    kit: PageKit,
    request: Request,
    catalog: Catalog,
    *,
    values: Mapping[str, str],
    status: int = 200,
    errors: list[FieldError] | None = None,
    banner: str | None = None,
) -> HTMLResponse:
    """The form, with what was typed and what is wrong with it. A fresh submission key per
    rendering unless the resident's own is sent back (a resend after an outage)."""
    lang, _ = choose_language(request)
    by_field, summary = form_errors(errors or [], lang)
    token = values.get(SUBMISSION_KEY_FIELD, "")
    if not _SUBMISSION_KEY_RE.match(token):
        token = secrets.token_urlsafe(24)
    units = [{"id": u.id, "label": catalog.path_name(u.id)} for u in catalog.selectable_units()]
    categories = [{"id": c.id, "label": c.name(lang)} for c in catalog.categories.values()]
    return kit.render(
        request,
        "form.html",
        status=status,
        values=values,
        errors=by_field,
        summary=summary,
        banner=banner,
        submission_key=token,
        units=units,
        categories=categories,
    )


def idempotency_key(form: Mapping[str, str], submission: Submission) -> str | None:
    """The form's key with what was submitted: a double click (or a resend after an outage)
    lands on the same petition; another petition from the same page does not."""
    token = form.get(SUBMISSION_KEY_FIELD, "")
    if not _SUBMISSION_KEY_RE.match(token):
        return None
    return f"form:{token}:{submission_fingerprint(submission)}"


@router.get("/", response_class=HTMLResponse)
async def form(request: Request, kit: Pages, catalog: CatalogDep) -> Response:
    return form_page(kit, request, catalog, values={})


@router.post("/", response_class=HTMLResponse)
async def submit(
    request: Request, kit: Pages, catalog: CatalogDep, settings: SettingsDep, runtime: AppRuntime
) -> Response:
    """Submit from the form, then go to the tracking page (post/redirect/get)."""
    lang, _ = choose_language(request)
    try:
        values = await read_page_form(request)
    except FormRefused as exc:
        return refused_page(kit, request, exc)
    try:
        submission = validate_submission(submission_data(values, lang), catalog)
    except InvalidSubmission as exc:
        return form_page(kit, request, catalog, values=values, status=422, errors=exc.errors)
    try:
        receipt = await store.submit_petition(
            runtime.engine,
            submission=submission,
            now=runtime.clock.now(),
            public_url=settings.public_url,
            idempotency_key=idempotency_key(values, submission),
        )
    except IdempotencyConflict:
        return error_page(kit, request, 409, "already_sent")
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        banner = kit.text("unavailable", lang)
        response = form_page(kit, request, catalog, values=values, status=503, banner=banner)
        response.headers["Retry-After"] = "5"
        return response
    runtime.relay.wake()
    return see_other(f"/track/{receipt.tracking_token}?new=1")
