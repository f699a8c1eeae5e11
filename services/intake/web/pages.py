"""What the resident's pages share: their kit (templates and texts), reading a form, the error
page, the form's error summary. The pages work without JavaScript, are small enough for a slow
phone, and speak the resident's language only, errors included; every failure the resident
can meet is a page, never a JSON problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.intake.errors import FieldError
from services.intake.http import MAX_BODY_BYTES
from services.intake.web.i18n import catalogue, field_label
from shared.webkit.forms import FormRefused, read_form
from shared.webkit.i18n import Lang, choose_language
from shared.webkit.pages import PageKit, page_kit

TEMPLATES = Path(__file__).with_name("templates")


def build_page_kit() -> PageKit:
    return PageKit(templates=TEMPLATES, catalogue=catalogue())


async def read_page_form(request: Request) -> dict[str, str]:
    """A form as the API would take its body (the same size limit); `FormRefused` otherwise."""
    return await read_form(request, max_bytes=MAX_BODY_BYTES)


def error_page(kit: PageKit, request: Request, status: int, message_key: str) -> HTMLResponse:
    """A failure in the resident's language; a 503 says when to try again."""
    lang, _ = choose_language(request)
    response = kit.render(request, "error.html", status=status, message=kit.text(message_key, lang))
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


def refused_page(kit: PageKit, request: Request, exc: FormRefused) -> HTMLResponse:
    return error_page(kit, request, exc.status, exc.message_key)


def unavailable_page(request: Request) -> HTMLResponse:
    """The database cannot be reached: try again shortly (the app's outage handler)."""
    return error_page(page_kit(request), request, 503, "unavailable_short")


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
