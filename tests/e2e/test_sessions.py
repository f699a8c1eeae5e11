"""Sessions end everywhere at once: the three services as processes, a token refused by routing
and by notify right after its session is signed out, or its person deactivated, demoted or given
a new password by an organisation import; an expired access token is renewed from the session,
for the API and for the pages' cookie alike."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.routing.org import DEMO_ORG_FILE
from services.stack import Stack
from shared.auth import REFRESH_COOKIE, SESSION_COOKIE, issue_token, read_token
from shared.settings import DEMO_SECRET

ROOT = Path(__file__).parents[2]
UNREAD = "/api/v1/inbox/unread-count"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def sign_in(http: httpx.AsyncClient, stack: Stack, username: str) -> dict[str, Any]:
    answer = await http.post(
        stack.url("routing") + "/api/v1/auth/token",
        data={"username": username, "password": "demo"},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["expires_in"] <= 15 * 60
    return body


async def statuses(http: httpx.AsyncClient, stack: Stack, token: str) -> tuple[int, int]:
    """(routing's answer, notify's answer) to the same access token."""
    auth = {"Authorization": f"Bearer {token}"}
    routing = await http.get(stack.url("routing") + "/api/v1/me", headers=auth)
    notify = await http.get(stack.url("notify") + UNREAD, headers=auth)
    return routing.status_code, notify.status_code


async def test_a_signed_out_token_is_refused_at_once_by_routing_and_notify(
    sqlite_stack: Stack, http: httpx.AsyncClient
) -> None:
    tokens = await sign_in(http, sqlite_stack, "dangthutai")
    kept = await sign_in(http, sqlite_stack, "dangthutai")  # another device: its own session
    access = tokens["access_token"]
    assert await statuses(http, sqlite_stack, access) == (200, 200)

    out = await http.post(
        sqlite_stack.url("routing") + "/api/v1/auth/signout",
        headers={"Authorization": f"Bearer {access}"},
    )
    assert out.status_code == 204
    assert await statuses(http, sqlite_stack, access) == (401, 401)
    refreshed = await http.post(
        sqlite_stack.url("routing") + "/api/v1/auth/refresh",
        data={"refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 401
    assert refreshed.json()["type"] == "urn:petitions:problem:session-ended"
    # The same person's other session goes on.
    assert await statuses(http, sqlite_stack, kept["access_token"]) == (200, 200)


async def petitions(stack: Stack, *args: str) -> str:
    """The `petitions` command against the stack's routing database and bus; its output."""
    cli = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("petitions")),
        *args,
        env=stack.service_env("routing"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(cli.communicate(), timeout=120)
    assert cli.returncode == 0, err.decode()
    # It told the other services itself, over NATS.
    assert "could not announce" not in err.decode()
    return out.decode()


def changed_org(tmp_path: Path) -> Path:
    """The demo organisation with one leader demoted, one member deactivated and one given a
    new password; everyone else as they were."""
    org = yaml.safe_load(DEMO_ORG_FILE.read_text(encoding="utf-8"))
    for member in org["members"]:
        if member["username"] == "bithu.thoiana":
            member["role"] = "member"
        elif member["username"] == "dangthutai":
            member["active"] = False
        elif member["username"] == "truongminhquyen":
            member["password"] = "a-new-password-2026"
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(org, allow_unicode=True), encoding="utf-8")
    return path


async def test_deactivation_demotion_and_a_new_password_end_sessions_at_once(
    sqlite_stack: Stack, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    people = ("bithu.thoiana", "dangthutai", "truongminhquyen", "vothanhlong")
    tokens = {u: (await sign_in(http, sqlite_stack, u))["access_token"] for u in people}
    for token in tokens.values():
        assert await statuses(http, sqlite_stack, token) == (200, 200)

    out = await petitions(sqlite_stack, "org", "import", str(changed_org(tmp_path)))
    assert "Đã nhập / imported" in out

    for username in ("bithu.thoiana", "dangthutai", "truongminhquyen"):
        assert await statuses(http, sqlite_stack, tokens[username]) == (401, 401), username
    # Nothing changed for him: his session stays.
    assert await statuses(http, sqlite_stack, tokens["vothanhlong"]) == (200, 200)
    # Until an operator ends it.
    ended = await petitions(sqlite_stack, "sessions", "end", "--username", "vothanhlong")
    assert "ended: 1" in ended
    assert await statuses(http, sqlite_stack, tokens["vothanhlong"]) == (401, 401)
    # The demoted leader signs in again and is a member now.
    again = await sign_in(http, sqlite_stack, "bithu.thoiana")
    assert read_token(again["access_token"], secret=DEMO_SECRET).role == "member"


async def test_an_expired_access_token_is_renewed_from_its_session(
    sqlite_stack: Stack, http: httpx.AsyncClient
) -> None:
    routing = sqlite_stack.url("routing")
    tokens = await sign_in(http, sqlite_stack, "dangthutai")
    staff = read_token(tokens["access_token"], secret=DEMO_SECRET)
    expired = issue_token(staff, secret=DEMO_SECRET, ttl=timedelta(seconds=-60))
    assert await statuses(http, sqlite_stack, expired) == (401, 401)

    # An API client asks for the next access token with its refresh token.
    renewed = await http.post(
        routing + "/api/v1/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()["access_token"]
    assert read_token(fresh, secret=DEMO_SECRET).session_id == staff.session_id
    assert await statuses(http, sqlite_stack, fresh) == (200, 200)

    # A page: the browser still has the session's refresh cookie and an expired access cookie.
    cookies = {"Cookie": f"{SESSION_COOKIE}={expired}; {REFRESH_COOKIE}={tokens['refresh_token']}"}
    page = await http.get(routing + "/cases", headers=cookies)
    assert page.status_code == 200, page.text
    assert "dangthutai" in page.text or staff.name in page.text
    set_cookie = page.headers.get_list("set-cookie")
    renewed_cookie = [c for c in set_cookie if c.startswith(f"{SESSION_COOKIE}=")]
    assert renewed_cookie, set_cookie
    assert "HttpOnly" in renewed_cookie[0]
    page_token = renewed_cookie[0].split(";", 1)[0].split("=", 1)[1]
    assert await statuses(http, sqlite_stack, page_token) == (200, 200)

    # Another service's page sends the browser to routing's sign-in page, which renews the
    # session on the way and sends it straight back.
    back = sqlite_stack.url("notify") + "/inbox"
    hop = await http.get(
        routing + "/signin", params={"next": back}, headers=cookies, follow_redirects=False
    )
    assert hop.status_code == 303
    assert hop.headers["location"] == back

    # Once signed out, the refresh cookie renews nothing and is cleared.
    out = await http.post(
        routing + "/api/v1/auth/signout", headers={"Authorization": f"Bearer {fresh}"}
    )
    assert out.status_code == 204
    gone = await http.get(routing + "/cases", headers=cookies, follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/signin")
    assert any(c.startswith(f'{REFRESH_COOKIE}=""') for c in gone.headers.get_list("set-cookie"))
