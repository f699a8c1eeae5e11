"""What notify's pages share: their kit (templates, texts, the figures' filters) and how a page
is answered, with the demo mailbox in the navigation where it exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
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


def mailbox_dir(settings: Settings) -> Path | None:
    return settings.mailbox_dir if mailbox_exists(settings) else None


def render(
    kit: PageKit,
    request: Request,
    settings: Settings,
    name: str,
    staff: Staff | None,
    /,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page with the signed-in person and, where it exists, the demo mailbox in the
    navigation."""
    return kit.render(
        request, name, status=status, staff=staff, mailbox=mailbox_exists(settings), **context
    )


def not_found(
    kit: PageKit, request: Request, settings: Settings, staff: Staff | None, message_key: str
) -> HTMLResponse:
    """A 404 as a page in the reader's language, the same whether the thing does not exist or
    this person may not see it."""
    return render(
        kit, request, settings, "not_found.html", staff, status=404, message_key=message_key
    )
