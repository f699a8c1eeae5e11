"""Rendering a page: one Jinja2 environment per service (its templates over the kit's base
layout), autoescaped, built in `create_app` and kept on `app.state`, never at import."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from shared.webkit.headers import PageHeaders, page_headers
from shared.webkit.i18n import LANG_COOKIE, LANG_COOKIE_MAX_AGE, Catalogue, Lang, choose_language
from shared.webkit.session import SignInRequired
from shared.webkit.times import format_local, format_local_date

KIT_TEMPLATES = Path(__file__).with_name("templates")
# http(s) only: nothing a person wrote becomes a `javascript:` link.
_LINK = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}"


def linkify(text: str) -> Markup:
    """Plain text as HTML: every piece escaped, web addresses made into links."""
    parts: list[Markup] = []
    pos = 0
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        parts.append(escape(text[pos : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(url))
        pos = match.start() + len(url)
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


def switch_url(request: Request, other: Lang, here: str | None) -> str:
    """This page in the other language. After a POST, `here` is the page to reload (never
    the action itself)."""
    if here is None:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        return f"{request.url.path}?{urlencode([*query, ('lang', other)])}"
    return f"{here}{'&' if '?' in here else '?'}lang={other}"


class PageKit:
    """A service's templates and texts, and how a page is answered."""

    def __init__(
        self,
        *,
        templates: Path,
        catalogue: Catalogue,
        filters: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(templates), jinja2.FileSystemLoader(KIT_TEMPLATES)]
            ),
            # Everything a person wrote is text, never HTML.
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["format_local"] = format_local
        self.env.filters["format_local_date"] = format_local_date
        self.env.filters["linkify"] = linkify
        self.env.filters.update(filters or {})

    def text(self, key: str, lang: Lang) -> str:
        return self.catalogue.text(key, lang)

    def render(
        self,
        request: Request,
        name: str,
        /,
        *,
        status: int = 200,
        here: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """The page `name` in the request's language, with a link to the other one. Only
        `status` and `here` are not the template's own variables."""
        lang, remember = choose_language(request)
        other: Lang = "vi" if lang == "en" else "en"

        def t(key: str) -> str:
            return self.catalogue.text(key, lang)

        html = self.env.get_template(name).render(
            **{"staff": None, "csrf": "", **context},
            lang=lang,
            t=t,
            switch_url=switch_url(request, other, here),
        )
        response = HTMLResponse(html, status_code=status)
        if remember:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, httponly=True, samesite="lax"
            )
        return response


def page_kit(request: Request) -> PageKit:
    kit: PageKit = request.app.state.webkit
    return kit


Pages = Annotated[PageKit, Depends(page_kit)]


def see_other(location: str) -> RedirectResponse:
    """Post/redirect/get: a reload never posts twice."""
    return RedirectResponse(location, status_code=303)


def install_pages(
    app: FastAPI,
    kit: PageKit,
    *,
    referrer_policy: str = "same-origin",
    form_origins: Iterable[str] = (),
) -> None:
    """Put the kit on the app, the security headers on every page, and send a browser
    without a session to sign in."""
    app.state.webkit = kit
    app.add_middleware(
        PageHeaders,
        headers=page_headers(referrer_policy=referrer_policy, form_origins=form_origins),
    )

    async def to_sign_in(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return see_other(exc.location)

    app.add_exception_handler(SignInRequired, to_sign_in)
