"""Security headers for every page of every service.

No scripts (the pages need none; a route may set its own policy, as intake's form does for its
optional "use my location" script): `default-src 'none'`, inline styles only; forms post
to this service (and, for sign-in, to our other services); nobody may frame a page; no page is
kept in a cache, as each shows personal data or a one-time form token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Swagger UI needs its own script; it is not one of our pages.
_NOT_PAGES = ("/docs",)


def page_headers(*, referrer_policy: str, form_origins: Iterable[str] = ()) -> dict[str, str]:
    """The headers of a page. `referrer_policy`: `no-referrer` where a secret is in the URL
    (a tracking link), `same-origin` where a POST must carry our Origin (signed-in forms)."""
    form_action = " ".join(["'self'", *sorted(form_origins)])
    return {
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        f"img-src 'self'; form-action {form_action}; base-uri 'none'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": referrer_policy,
        "Cache-Control": "no-store",
    }


class PageHeaders:
    """Adds the page headers to every HTML response and redirect (a header a route set itself
    wins), whatever route or error handler produced it."""

    def __init__(self, app: ASGIApp, *, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(_NOT_PAGES):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                is_page = headers.get("content-type", "").startswith("text/html")
                if is_page or 300 <= message["status"] < 400:
                    for name, value in self.headers.items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
