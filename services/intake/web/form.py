"""The submission form: a resident sends a petition from a phone in under a minute, with no
account. A refused field keeps everything typed; a database outage keeps it too.

Robots are kept out without a captcha: a field people never see (`website`: filled in, the
sender is told it went and nothing is stored), a minimum time between showing the form and
sending it (a signed timestamp in a hidden field: sent sooner, the form comes back with what
was typed), and the public rate limit per address and contact (`throttle.py`)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.intake import store
from services.intake.catalog import Catalog
from services.intake.deps import CatalogDep, ClientAddress, SettingsDep, ThrottleDep
from services.intake.errors import (
    FieldError,
    IdempotencyConflict,
    InvalidSubmission,
    NotAPetition,
    TooManyRequests,
)
from services.intake.kinds import refuse_other_kinds
from services.intake.petitions import (
    Submission,
    submission_fingerprint,
    validate_submission,
)
from services.intake.settings import Settings
from services.intake.web.pages import error_page, form_errors, read_page_form, refused_page
from shared.db import is_database_outage
from shared.web import RETRY_AFTER_S, AppRuntime, database_breaker
from shared.webkit.forms import FormRefused
from shared.webkit.headers import page_headers
from shared.webkit.i18n import Lang, choose_language
from shared.webkit.pages import PageKit, Pages, see_other

log = structlog.get_logger(__name__)

STATIC = Path(__file__).with_name("static")
FORM_CSP = page_headers(referrer_policy="no-referrer")["Content-Security-Policy"] + (
    "; script-src 'self'"
)

router = APIRouter(include_in_schema=False)

SUBMISSION_KEY_FIELD = "submission_key"
STARTED_FIELD = "form_started"
HONEYPOT_FIELD = "website"
# Fields of the page that are not the petition's.
_NOT_SUBMITTED = (
    "notify",
    "consent",
    "kind",
    SUBMISSION_KEY_FIELD,
    STARTED_FIELD,
    HONEYPOT_FIELD,
)
_SUBMISSION_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CHECKED = frozenset({"on", "true", "1", "yes"})


def submission_data(form: Mapping[str, str], lang: Lang) -> dict[str, Any]:
    """The form as the validator expects it: checkboxes as booleans, blanks as absent."""
    data: dict[str, Any] = {k: v for k, v in form.items() if k not in _NOT_SUBMITTED}
    data["notify"] = form.get("notify", "").lower() in _CHECKED
    data["consent"] = form.get("consent", "").lower() in _CHECKED
    data["language"] = lang
    return data


# A form's signed "shown at" stamp is good for this long (a resident may leave the page open
# overnight; a robot reusing one stamp for weeks is not let through).
STAMP_MAX_AGE_S = 2 * 24 * 3600


def _signature(secret: str, stamp: str) -> str:
    mac = hmac.new(secret.encode(), f"form-started:{stamp}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def started_token(settings: Settings, now: datetime) -> str:
    """When the form was shown, signed so that a robot cannot backdate it."""
    stamp = str(int(now.timestamp()))
    return f"{stamp}.{_signature(settings.secret_key.get_secret_value(), stamp)}"


def shown_at(settings: Settings, token: str) -> float | None:
    """The time (Unix seconds) a form's token says it was shown; None unless we signed it."""
    stamp, _, signature = token.partition(".")
    if not stamp.isdigit() or len(stamp) > 12:
        return None
    expected = _signature(settings.secret_key.get_secret_value(), stamp)
    # Bytes: `compare_digest` refuses text that is not ASCII (a TypeError, i.e. a 500).
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    return float(stamp)


def filled_too_fast(settings: Settings, values: Mapping[str, str], now: datetime) -> bool:
    """Sent sooner than a person could have filled the form in (or without our timestamp)."""
    if settings.form_min_fill_s <= 0:
        return False
    started = shown_at(settings, values.get(STARTED_FIELD, ""))
    if started is None:
        return True
    age = now.timestamp() - started
    # A stamp kept from long ago is a robot's reusing one it fetched once: shown again.
    return age < settings.form_min_fill_s or age > STAMP_MAX_AGE_S


def form_page(
    kit: PageKit,
    request: Request,
    catalog: Catalog,
    *,
    settings: Settings,
    now: datetime,
    values: Mapping[str, str],
    status: int = 200,
    errors: list[FieldError] | None = None,
    banner: str | None = None,
) -> HTMLResponse:
    """The form, with what was typed and what is wrong with it. A fresh submission key per
    rendering unless the resident's own is sent back (a resend after an outage); likewise the
    time it was first shown."""
    lang, _ = choose_language(request)
    by_field, summary = form_errors(errors or [], lang)
    token = values.get(SUBMISSION_KEY_FIELD, "")
    if not _SUBMISSION_KEY_RE.match(token):
        token = secrets.token_urlsafe(24)
    started = values.get(STARTED_FIELD, "")
    if shown_at(settings, started) is None:
        started = started_token(settings, now)
    units = [{"id": u.id, "label": catalog.path_name(u.id)} for u in catalog.selectable_units()]
    categories = [{"id": c.id, "label": c.name(lang)} for c in catalog.categories.values()]
    response = kit.render(
        request,
        "form.html",
        status=status,
        values=values,
        errors=by_field,
        summary=summary,
        banner=banner,
        submission_key=token,
        form_started=started,
        units=units,
        categories=categories,
    )
    # The one script of the resident's pages: "use my location", from this origin only.
    response.headers["Content-Security-Policy"] = FORM_CSP
    return response


@cache
def _locate_script() -> bytes:
    return (STATIC / "locate.js").read_bytes()


@router.get("/static/locate.js")
async def locate_script() -> Response:
    """The form's "use my location" button (progressive enhancement: the form works without)."""
    return Response(
        _locate_script(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def idempotency_key(form: Mapping[str, str], submission: Submission) -> str | None:
    """The form's key with what was submitted: a double click (or a resend after an outage)
    lands on the same petition; another petition from the same page does not."""
    token = form.get(SUBMISSION_KEY_FIELD, "")
    if not _SUBMISSION_KEY_RE.match(token):
        return None
    return f"form:{token}:{submission_fingerprint(submission)}"


@router.get("/", response_class=HTMLResponse)
async def form(
    request: Request, kit: Pages, catalog: CatalogDep, settings: SettingsDep, runtime: AppRuntime
) -> Response:
    return form_page(kit, request, catalog, settings=settings, now=runtime.clock.now(), values={})


def _not_stored(kit: Pages, request: Request, values: Mapping[str, str]) -> Response | None:
    """A robot that filled in the field people never see (told its petition went), or a
    request that is not a petition (told where to file it): answered, and nothing stored."""
    if values.get(HONEYPOT_FIELD, "").strip():
        log.info("form_honeypot_filled")
        return kit.render(request, "received.html")
    try:
        refuse_other_kinds(values.get("kind"))
    except NotAPetition as exc:
        return kit.render(
            request, "not_petition.html", guidance_vi=exc.guidance_vi, guidance_en=exc.guidance_en
        )
    return None


@router.post("/", response_class=HTMLResponse)
async def submit(
    request: Request,
    kit: Pages,
    catalog: CatalogDep,
    settings: SettingsDep,
    runtime: AppRuntime,
    throttle: ThrottleDep,
    client: ClientAddress,
) -> Response:
    """Submit from the form, then go to the tracking page (post/redirect/get)."""
    lang, _ = choose_language(request)
    now = runtime.clock.now()
    try:
        values = await read_page_form(request)
    except FormRefused as exc:
        return refused_page(kit, request, exc)
    if (turned_away := _not_stored(kit, request, values)) is not None:
        return turned_away

    def again(status: int, retry_after: int | None = None, **page: Any) -> HTMLResponse:
        response = form_page(
            kit, request, catalog, settings=settings, now=now, values=values, status=status, **page
        )
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    unavailable = partial(again, 503, RETRY_AFTER_S, banner=kit.text("unavailable", lang))
    if filled_too_fast(settings, values, now):
        log.info("form_filled_too_fast")
        return again(422, banner=kit.text("too_fast", lang))
    try:
        submission = validate_submission(submission_data(values, lang), catalog)
    except InvalidSubmission as exc:
        return again(422, errors=exc.errors)
    breaker = database_breaker(request)
    if breaker.open:
        return unavailable()
    try:
        await throttle.admit_submission(client, submission.email, submission.phone)
        receipt = await store.submit_petition(
            runtime.engine,
            submission=submission,
            now=now,
            public_url=settings.public_url,
            idempotency_key=idempotency_key(values, submission),
        )
    except TooManyRequests as exc:
        banner = kit.text("rate_limited", lang).format(minutes=exc.minutes)
        return again(429, exc.retry_after, banner=banner)
    except IdempotencyConflict:
        return error_page(kit, request, 409, "already_sent")
    except Exception as exc:
        if not is_database_outage(exc):
            raise
        breaker.trip()
        return unavailable()
    breaker.recovered()
    runtime.relay.wake()
    return see_other(f"/track/{receipt.tracking_token}?new=1")
