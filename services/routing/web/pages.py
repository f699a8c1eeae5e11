"""What the member workspace's pages share: their kit, the CSRF guard, the signed-in person
in the layout, and the message page. Server-rendered, no JavaScript, phone first, Vietnamese
first; templates autoescape everything, so a resident's text is never HTML.

The session is the staff token in the `petitions_staff` cookie (HttpOnly, SameSite=Lax, Secure
in production), the same one every service reads through `shared.web.current_staff`. Every
signed-in POST carries a CSRF token derived from that token with the service secret, and its
Origin (or Referer), when sent, must be one of the configured service URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from services.routing.actions import CaseActions
from services.routing.deps import ActionsDep, GuardDep
from services.routing.settings import Settings
from services.routing.web.i18n import catalogue
from shared.webkit.forms import Guard, read_form
from shared.webkit.pages import PageKit, Pages
from shared.webkit.session import StaffSession

TEMPLATES = Path(__file__).with_name("templates")
MAX_FORM_BYTES = 64 * 1024


def build_page_kit() -> PageKit:
    return PageKit(templates=TEMPLATES, catalogue=catalogue())


def build_guard(settings: Settings) -> Guard:
    """Forms come from, and sign-in goes back to, one of our three services."""
    return Guard(
        secret=settings.secret_key.get_secret_value(),
        service_urls=(settings.intake_url, settings.routing_url, settings.notify_url),
    )


@dataclass(frozen=True)
class Workspace:
    """What a workspace page is given: its kit, the guard and the case actions."""

    kit: PageKit
    guard: Guard
    actions: CaseActions

    def render(
        self,
        request: Request,
        name: str,
        /,
        *,
        session: StaffSession | None = None,
        status: int = 200,
        here: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """A page for `session`'s person; `here` is the page to reload in the other language
        when `request` was a POST (the case list unless said otherwise)."""
        if here is None and request.method != "GET":
            here = "/cases"
        return self.kit.render(
            request,
            name,
            status=status,
            here=here,
            staff=session.staff if session else None,
            csrf=self.guard.csrf(session.token) if session else "",
            **context,
        )

    def message(
        self, request: Request, status: int, key: str, session: StaffSession | None = None
    ) -> HTMLResponse:
        """A page saying only this (`key` in the catalogue), with a way back to the cases."""
        return self.render(request, "message.html", session=session, status=status, message_key=key)

    def refused(self, request: Request, session: StaffSession | None) -> HTMLResponse:
        """A POST that is not ours (another site, or a stale CSRF token)."""
        return self.message(request, 403, "forbidden", session)

    async def read_form(self, request: Request) -> dict[str, str]:
        return await read_form(request, max_bytes=MAX_FORM_BYTES)


def workspace(kit: Pages, guard: GuardDep, actions: ActionsDep) -> Workspace:
    return Workspace(kit=kit, guard=guard, actions=actions)


WorkspaceDep = Annotated[Workspace, Depends(workspace)]
