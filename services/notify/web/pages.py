"""What notify's pages share: their kit (templates, texts, the figures' filters) and how a page
is answered, with the demo mailbox in the navigation where it exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from services.notify.settings import Settings
from services.notify.web.i18n import catalogue
from shared.auth import Staff
from shared.webkit.pages import PageKit

TEMPLATES = Path(__file__).with_name("templates")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:.1f} h"


def build_page_kit() -> PageKit:
    return PageKit(
        templates=TEMPLATES, catalogue=catalogue(), filters={"percent": percent, "hours": hours}
    )


def mailbox_exists(settings: Settings) -> bool:
    """The demo mailbox holds residents' addresses: it exists only without SMTP, never in
    production."""
    return settings.embedded_mailbox and settings.env != "production"


def mailbox_dir(settings: Settings) -> Path:
    if not mailbox_exists(settings):
        raise HTTPException(404, "Không có hộp thư / No mailbox")
    return settings.mailbox_dir


def render(
    kit: PageKit,
    request: Request,
    settings: Settings,
    name: str,
    staff: Staff | None,
    /,
    **context: Any,
) -> HTMLResponse:
    return kit.render(request, name, staff=staff, mailbox=mailbox_exists(settings), **context)
