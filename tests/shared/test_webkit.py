"""The web kit every service's pages stand on: language choice, the one local-time format, form
reading and CSRF, the staff session, and the security headers on a page of each service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.requests import Request as StarletteRequest

from services.intake.app import create_app as create_intake
from services.intake.settings import Settings as IntakeSettings
from services.notify.app import create_app as create_notify
from services.routing.app import create_app as create_routing
from services.routing.settings import Settings as RoutingSettings
from shared.auth import SESSION_COOKIE, Staff, issue_token
from shared.webkit.forms import CSRF_FIELD, FormRefused, Guard, read_form
from shared.webkit.i18n import Catalogue, choose_language, from_accept_language
from shared.webkit.pages import PageKit, Pages, install_pages, switch_url
from shared.webkit.session import OptionalSession
from shared.webkit.times import LOCAL_TZ, format_local, format_local_date
from tests.notify.conftest import make_settings as notify_settings
from tests.support import service_nats

SECRET = "kit-test-secret-that-is-long-enough-0123456789"


def request_for(query: str = "", headers: dict[str, str] | None = None) -> StarletteRequest:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/cases/1",
        "query_string": query.encode(),
        "headers": raw,
    }
    return StarletteRequest(scope)


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("", {}, ("vi", False)),
        ("lang=en", {}, ("en", True)),
        ("lang=vi", {"cookie": "lang=en"}, ("vi", True)),
        ("lang=fr", {"cookie": "lang=en"}, ("en", False)),
        ("", {"cookie": "lang=en", "accept-language": "vi-VN"}, ("en", False)),
        ("", {"accept-language": "en-US,en;q=0.9,vi;q=0.8"}, ("en", False)),
        ("", {"accept-language": "fr-FR,vi;q=0.5,en;q=0.4"}, ("vi", False)),
        ("", {"accept-language": "fr-FR,de;q=0.9"}, ("vi", False)),
        ("", {"accept-language": "en;q=0"}, ("vi", False)),
    ],
)
def test_language_is_asked_then_remembered_then_the_browsers_then_vietnamese(
    query: str, headers: dict[str, str], expected: tuple[str, bool]
) -> None:
    assert choose_language(request_for(query, headers)) == expected


def test_accept_language_follows_quality_values() -> None:
    assert from_accept_language("vi;q=0.3, en;q=0.7") == "en"
    assert from_accept_language("en-GB;q=bad, vi") == "vi"
    assert from_accept_language("") is None


def test_the_switch_link_keeps_the_query_and_after_a_post_reloads_the_page() -> None:
    request = request_for("status=all&lang=vi")
    assert switch_url(request, "en", None) == "/cases/1?status=all&lang=en"
    assert switch_url(request, "en", "/signin?next=%2Fcases") == "/signin?next=%2Fcases&lang=en"


def test_a_service_catalogue_wins_over_the_shared_one() -> None:
    catalogue = Catalogue({"too_large": ("Dài quá.", "Too long.")})
    assert catalogue.text("too_large", "vi") == "Dài quá."
    assert catalogue.text("switch_lang", "vi") == "English"
    assert catalogue.text("switch_lang", "en") == "Tiếng Việt"


def test_one_local_time_format_in_asia_ho_chi_minh() -> None:
    moment = datetime(2025, 3, 3, 1, 1, tzinfo=UTC)
    assert format_local(moment, "vi") == "03/03/2025 08:01"
    assert format_local(moment, "en") == "03/03/2025 08:01"
    # Stored JSON documents hold ISO strings; after 17:00 UTC it is already the next day here.
    assert format_local("2025-03-03T17:30:00+00:00") == "04/03/2025 00:30"
    assert format_local(None) == ""
    assert format_local_date(datetime(2025, 3, 3, 17, 30, tzinfo=UTC)) == "04/03/2025"
    assert format_local_date(date(2025, 3, 3)) == "03/03/2025"
    assert LOCAL_TZ.utcoffset(datetime(2025, 1, 1)) == timedelta(hours=7)


def kit_guard() -> Guard:
    return Guard(secret=SECRET, service_urls=["http://kit.test"])


def kit_app(tmp_path: Path) -> FastAPI:
    """A page of the kit's own: a signed-in form guarded against CSRF."""
    (tmp_path / "page.html").write_text(
        '{% extends "base.html" %}{% block content %}<p>{{ said }}</p>{% endblock %}'
    )
    app = FastAPI()
    app.state.staff_secret = lambda: SECRET

    async def session_open(_: Staff) -> bool:
        return True

    app.state.session_check = session_open
    guard = kit_guard()
    install_pages(app, PageKit(templates=tmp_path, catalogue=Catalogue({"site_title": ("T", "T")})))

    @app.get("/page")
    async def page(request: Request, kit: Pages, said: str = "") -> HTMLResponse:
        return kit.render(request, "page.html", said=said)

    @app.post("/act")
    async def act(request: Request, session: OptionalSession) -> Response:
        if session is None:
            return Response(status_code=401)
        try:
            form = await read_form(request, max_bytes=1000)
        except FormRefused as exc:
            return Response(exc.message_key, status_code=exc.status)
        if not guard.check(request, form, session.token):
            return Response(status_code=403)
        return Response(form.get("note", ""))

    return app


@pytest.fixture
async def kit_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=kit_app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://kit.test") as client:
        yield client


def session_token() -> str:
    staff = Staff(
        member_id="m-1", username="lan", name="Lan", role="member", unit_id="u", session_id="s-1"
    )
    return issue_token(staff, secret=SECRET, ttl=timedelta(minutes=5))


async def test_a_signed_in_form_without_its_csrf_token_or_from_elsewhere_is_refused(
    kit_client: httpx.AsyncClient,
) -> None:
    token = session_token()
    kit_client.cookies.set(SESSION_COOKIE, token)
    # Derived from the session, so a refreshed access token keeps the forms valid.
    csrf = kit_guard().csrf("s-1")
    assert (await kit_client.post("/act", data={"note": "x"})).status_code == 403
    wrong = {"note": "x", CSRF_FIELD: "0" * 64}
    assert (await kit_client.post("/act", data=wrong)).status_code == 403
    ours = {"note": "kept", CSRF_FIELD: csrf}
    foreign = await kit_client.post("/act", data=ours, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    opaque = await kit_client.post("/act", data=ours, headers={"origin": "null"})
    assert opaque.status_code == 403
    accepted = await kit_client.post("/act", data=ours, headers={"origin": "http://kit.test"})
    assert (accepted.status_code, accepted.text) == (200, "kept")
    # Too large, or not a form, is refused before anything is done.
    big = await kit_client.post("/act", data={**ours, "note": "x" * 2000})
    assert (big.status_code, big.text) == (413, "too_large")
    json_body = await kit_client.post("/act", json={"note": "x"})
    assert (json_body.status_code, json_body.text) == (415, "wrong_media")


async def test_an_expired_or_forged_session_is_no_session(kit_client: httpx.AsyncClient) -> None:
    assert (await kit_client.post("/act", data={})).status_code == 401
    forged = {SESSION_COOKIE: "forged"}
    kit_client.cookies.update(forged)
    assert (await kit_client.post("/act", data={})).status_code == 401


async def test_kit_pages_escape_what_people_wrote_and_carry_the_headers(
    kit_client: httpx.AsyncClient,
) -> None:
    page = await kit_client.get("/page", params={"said": "<script>alert(1)</script>"})
    assert "&lt;script&gt;" in page.text
    assert "<script" not in page.text
    assert '<a class="lang" href="/page?said=' in page.text
    assert_page_headers(page)


def assert_page_headers(page: httpx.Response, *, scripts: str | None = None) -> None:
    """`scripts`: the one `script-src` a page may allow (none unless given)."""
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    if scripts is None:
        assert "script-src" not in csp
    else:
        assert [d.strip() for d in csp.split(";") if "script-src" in d] == [scripts]
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] in ("no-referrer", "same-origin")
    assert page.headers["cache-control"] == "no-store"


async def get(app: FastAPI, path: str, **kwargs: object) -> httpx.Response:
    """A page that needs neither the database nor the broker, so the app is not started."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kwargs)  # type: ignore[arg-type]


async def test_every_service_answers_its_pages_with_the_security_headers(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    intake = create_intake(
        IntakeSettings(
            database_url=sqlite_url, **service_nats(nats_url, "intake"), public_url="http://i.test"
        )
    )
    routing = create_routing(
        RoutingSettings(env="test", **service_nats(nats_url, "routing"), database_url=sqlite_url)
    )
    notify = create_notify(notify_settings(nats_url, sqlite_url, tmp_path))
    form = await get(intake, "/")
    # The form's one script is its own "use my location" button, served from the same origin.
    assert_page_headers(form, scripts="script-src 'self'")
    assert form.headers["referrer-policy"] == "no-referrer"
    signin = await get(routing, "/signin")
    assert_page_headers(signin)
    assert "form-action 'self' http" in signin.headers["content-security-policy"]
    assert_page_headers(await get(notify, "/mail"))
    # The API documentation is not one of our pages: Swagger UI runs its own script.
    assert "content-security-policy" not in (await get(notify, "/docs")).headers


async def test_notify_pages_speak_vietnamese_first_and_english_when_asked(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    notify = create_notify(notify_settings(nats_url, sqlite_url, tmp_path))
    vi = await get(notify, "/mail")
    assert '<html lang="vi">' in vi.text
    assert "Hộp thư thử nghiệm" in vi.text
    assert "Demo mailbox" not in vi.text
    assert 'href="/mail?lang=en"' in vi.text
    en = await get(notify, "/mail?lang=en")
    assert '<html lang="en">' in en.text
    assert "Demo mailbox" in en.text
    assert "Hộp thư thử nghiệm" not in en.text
    assert "lang=en" in en.headers["set-cookie"]
    browser = await get(notify, "/mail", headers={"accept-language": "en-US,en;q=0.9"})
    assert "Demo mailbox" in browser.text
    # What is not there is a page too, in the reader's language.
    missing = await get(notify, "/mail/00000001-nothing.eml?lang=en")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "No such message." in missing.text
