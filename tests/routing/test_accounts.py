"""Accounts: the password policy (OWASP ASVS L2), changing one's password (other sessions end
at once, this one goes on), the sign-in history, and one-time links to set a password (only a
hash kept, one use, 24 hours, in reach of the one scope rule)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import select, update

from services.routing import models
from services.routing.accounts import Accounts
from services.routing.app import create_app
from services.routing.errors import WeakPassword
from services.routing.passwords import check_new_password, common_passwords
from services.routing.settings import Settings
from shared.rpc import AccountLinkReply, AccountLinkRequest
from shared.streams import RPC_ROUTING_ACCOUNT_LINK
from tests.routing.test_flow import HAMLET_LEADER, ROADS_MEMBER, Routing
from tests.support import connect_nats, eventually, service_nats

SECRET = "test-secret-" + "x" * 32
BASE = "http://127.0.0.1:8001"
GOOD = "mây trắng bay trên núi Sam"
OTHER_LEADER = "bithu.thoiana"


# -- the policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "too_short"),
        ("a" * 129, "too_long"),
        ("Bùi Hoàng Lực  ", "personal"),
        ("buihoangluc12", None),
        ("BuiHoangLuc", "too_short"),
        ("123456789QWERTY", "breached"),
        ("buihoanglucxx", None),
    ],
)
def test_the_policy_says_what_is_wrong(password: str, reason: str | None) -> None:
    if reason is None:
        assert check_new_password(password, username="buihoangluc", name="Bùi Hoàng Lực")
        return
    with pytest.raises(WeakPassword) as refused:
        check_new_password(password, username="buihoangluc", name="Bùi Hoàng Lực")
    assert refused.value.extra["reason"] == reason
    assert refused.value.vi
    assert refused.value.en


def test_the_name_or_username_is_refused_whatever_the_spaces_and_case() -> None:
    with pytest.raises(WeakPassword) as refused:
        check_new_password("Nguyễn Thị Minh Khai", username="minhkhai", name="nguyễn thị minh khai")
    assert refused.value.extra["reason"] == "personal"
    with pytest.raises(WeakPassword):
        check_new_password("tran.van.hoang.long", username="TRAN.VAN.HOANG.LONG")


def test_length_counts_after_nfkc_and_spaces_are_kept() -> None:
    # Eleven full-width digits are eleven characters after NFKC, whatever their bytes.
    with pytest.raises(WeakPassword):
        check_new_password("１２３４５６７８９０１", username="x")
    decomposed = "Cánh đồng lúa chín vàng".replace("á", "a\u0301")
    assert check_new_password(decomposed, username="x") == "Cánh đồng lúa chín vàng"
    assert check_new_password("  twelve chars ok  ", username="x") == "  twelve chars ok  "


def test_the_breached_list_comes_offline_from_a_package_and_ignores_case() -> None:
    assert len(common_passwords()) > 20_000
    with pytest.raises(WeakPassword) as refused:
        check_new_password("PASSWORD1234", username="x")
    assert refused.value.extra["reason"] == "breached"


# -- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
async def notify_bus(nats_url: str) -> AsyncIterator[NATS]:
    """notify's own NATS user: the only one allowed to ask routing for a link."""
    nc = await connect_nats(nats_url, "notify")
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
async def routing(nats_url: str, sqlite_url: str) -> AsyncIterator[Routing]:
    settings = Settings(
        env="test",
        **service_nats(nats_url, "routing"),
        database_url=sqlite_url,
        seed_demo=True,
        secret_key=SECRET,
        routing_url=BASE,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE
            ) as client:
                yield Routing(app, client, nc.jetstream())
        finally:
            await nc.close()


async def signed_in(routing: Routing, username: str, password: str = "demo") -> dict[str, str]:
    response = await routing.client.post(
        "/api/v1/auth/token",
        data={"username": username, "password": password},
        headers={"User-Agent": "pytest-phone/1.0 " + "x" * 300},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(
    routing: Routing,
) -> None:
    here = await signed_in(routing, ROADS_MEMBER)
    elsewhere = await signed_in(routing, ROADS_MEMBER)
    url = "/api/v1/me/password"

    wrong = await routing.client.post(
        url, json={"current_password": "nope", "new_password": GOOD}, headers=here
    )
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["type"] == "urn:petitions:problem:wrong-password"

    weak = await routing.client.post(
        url, json={"current_password": "demo", "new_password": "short"}, headers=here
    )
    assert weak.status_code == 422
    problem = weak.json()
    assert problem["type"] == "urn:petitions:problem:weak-password"
    assert problem["reason"] == "too_short"
    assert "ít nhất 12 ký tự" in problem["detail"]
    assert "at least 12 characters" in problem["detail"]

    changed = await routing.client.post(
        url, json={"current_password": "demo", "new_password": GOOD}, headers=here
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"sessions_ended": 1}
    assert (await routing.client.get("/api/v1/me", headers=here)).status_code == 200
    assert (await routing.client.get("/api/v1/me", headers=elsewhere)).status_code == 401

    old = await routing.client.post(
        "/api/v1/auth/token", data={"username": ROADS_MEMBER, "password": "demo"}
    )
    assert old.status_code == 401
    await signed_in(routing, ROADS_MEMBER, GOOD)


async def test_the_sign_in_history_lists_every_attempt_for_the_person_and_admins(
    routing: Routing,
) -> None:
    bad = await routing.client.post(
        "/api/v1/auth/token", data={"username": ROADS_MEMBER, "password": "wrong"}
    )
    assert bad.status_code == 401
    headers = await signed_in(routing, ROADS_MEMBER)
    async with routing.runtime.engine.begin() as conn:
        m = models.members
        await conn.execute(update(m).where(m.c.username == "dangthutai").values(active=False))
    gone = await routing.client.post(
        "/api/v1/auth/token", data={"username": "dangthutai", "password": "demo"}
    )
    assert gone.status_code == 401  # the same answer as a wrong password

    mine = await routing.client.get("/api/v1/me/signins", headers=headers)
    assert mine.status_code == 200, mine.text
    attempts = mine.json()["attempts"]
    assert [a["outcome"] for a in attempts] == ["success", "wrong_password"]
    assert len(attempts[0]["user_agent"]) == 200
    assert attempts[0]["user_agent"].startswith("pytest-phone/1.0")
    assert attempts[0]["at"].endswith("Z") or "+00:00" in attempts[0]["at"]

    admin = await signed_in(routing, "admin")
    theirs = await routing.client.get("/api/v1/members/dangthutai/signins", headers=admin)
    assert [a["outcome"] for a in theirs.json()["attempts"]] == ["deactivated"]
    refused = await routing.client.get("/api/v1/members/dangthutai/signins", headers=headers)
    assert refused.status_code == 404


async def test_history_keeps_ninety_days(routing: Routing) -> None:
    h = models.signin_history
    old = datetime.now(UTC) - timedelta(days=91)
    async with routing.runtime.engine.begin() as conn:
        await conn.execute(
            h.insert().values(
                member_id=ROADS_MEMBER, at=old, outcome="success", address="", user_agent=""
            )
        )
    await signed_in(routing, ROADS_MEMBER)
    async with routing.runtime.engine.connect() as conn:
        ats = (await conn.execute(select(h.c.at).where(h.c.member_id == ROADS_MEMBER))).all()
    assert len(ats) == 1
    assert ats[0].at > old


async def ask_link(nc: NATS, link_id: str) -> AccountLinkReply:
    """What notify asks just before emailing the link (over the bus, as notify)."""
    reply = await nc.request(
        RPC_ROUTING_ACCOUNT_LINK, AccountLinkRequest(link_id=link_id).model_dump_json().encode()
    )
    return AccountLinkReply.model_validate_json(reply.data)


async def test_a_reset_link_is_kept_as_a_hash_works_once_and_signs_in(
    routing: Routing, notify_bus: NATS
) -> None:
    admin = await signed_in(routing, "admin")
    member_session = await signed_in(routing, ROADS_MEMBER)
    asked = await routing.client.post(
        f"/api/v1/admin/members/{ROADS_MEMBER}/password-link", json={}, headers=admin
    )
    assert asked.status_code == 202, asked.text
    link_id = asked.json()["link_id"]
    assert "token" not in json.dumps(asked.json())

    events = await eventually(
        lambda: routing.events("account_link_requested"), what="the event on the stream"
    )
    _, payload = events[-1]
    assert payload["link_id"] == link_id
    assert payload["member_id"] == ROADS_MEMBER
    assert set(payload) >= {"kind", "expires_at", "requested_by"}

    reply = await ask_link(notify_bus, link_id)
    assert reply.found
    assert reply.email == "buihoangluc@example.org"
    assert reply.url
    token = reply.url.rsplit("/", 1)[1]
    async with routing.runtime.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(models.account_links).where(models.account_links.c.id == link_id)
                )
            )
            .mappings()
            .one()
        )
    assert token not in json.dumps({k: str(v) for k, v in row.items()})
    assert row["expires_at"] - row["created_at"] == timedelta(hours=24)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=routing.app), base_url=BASE
    ) as browser:
        page = await browser.get(reply.url)
        assert page.status_code == 200
        assert ROADS_MEMBER in page.text
        weak = await browser.post(
            reply.url, data={"new_password": "password1234", "repeat_password": "password1234"}
        )
        assert weak.status_code == 422
        assert "mật khẩu phổ biến" in weak.text
        done = await browser.post(reply.url, data={"new_password": GOOD, "repeat_password": GOOD})
        assert done.status_code == 303, done.text
        assert (await browser.get("/cases")).status_code == 200
        again = await browser.post(reply.url, data={"new_password": GOOD, "repeat_password": GOOD})
        assert again.status_code == 410
    assert (await routing.client.get("/api/v1/me", headers=member_session)).status_code == 401
    await signed_in(routing, ROADS_MEMBER, GOOD)
    assert not (await ask_link(notify_bus, link_id)).found


async def test_a_newer_mint_or_link_replaces_the_older_and_expiry_holds(routing: Routing) -> None:
    accounts: Accounts = routing.app.state.accounts
    admin = await signed_in(routing, "admin")
    url = f"/api/v1/admin/members/{ROADS_MEMBER}/password-link"
    first = (await routing.client.post(url, headers=admin)).json()["link_id"]
    early = await accounts.mint_link(first)
    late = await accounts.mint_link(first)
    assert early.url
    assert late.url
    assert early.url != late.url
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=routing.app), base_url=BASE
    ) as browser:
        assert (await browser.get(early.url)).status_code == 410
        assert (await browser.get(late.url)).status_code == 200
        second = (await routing.client.post(url, headers=admin)).json()["link_id"]
        assert (await browser.get(late.url)).status_code == 410
        assert not (await accounts.mint_link(first)).found
        fresh = await accounts.mint_link(second)
        assert fresh.url
        links = models.account_links
        async with routing.runtime.engine.begin() as conn:
            await conn.execute(
                update(links)
                .where(links.c.id == second)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert (await browser.get(fresh.url)).status_code == 410
        assert (await browser.get(re.sub(r"\.[^.]+$", ".forged", fresh.url))).status_code == 410


async def test_leaders_send_links_only_within_their_subtree(routing: Routing) -> None:
    url = "/api/v1/admin/members/{}/password-link"
    hamlet_leader = await signed_in(routing, HAMLET_LEADER)
    ok = await routing.client.post(url.format(ROADS_MEMBER), headers=hamlet_leader)
    assert ok.status_code == 202, ok.text
    elsewhere = await routing.client.post(url.format("dangthutai"), headers=hamlet_leader)
    assert elsewhere.status_code == 404
    admin_account = await routing.client.post(url.format("admin"), headers=hamlet_leader)
    assert admin_account.status_code == 404
    other = await signed_in(routing, OTHER_LEADER)
    assert (await routing.client.post(url.format("dangthutai"), headers=other)).status_code == 202
    member = await signed_in(routing, ROADS_MEMBER)
    assert (await routing.client.post(url.format(ROADS_MEMBER), headers=member)).status_code == 404


async def test_the_members_page_sends_a_link_with_the_csrf_token(routing: Routing) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=routing.app), base_url=BASE
    ) as browser:
        signed = await browser.post("/signin", data={"username": "admin", "password": "demo"})
        assert signed.status_code == 303
        page = await browser.get("/members")
        assert page.status_code == 200, page.text
        assert 'id="member-dangthutai"' in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        forged = await browser.post("/members/dangthutai/password-link", data={"kind": "reset"})
        assert forged.status_code == 403
        sent = await browser.post(
            "/members/dangthutai/password-link", data={"csrf": csrf.group(1), "kind": "reset"}
        )
        assert sent.status_code == 303
        assert "Đã gửi liên kết" in (await browser.get(sent.headers["location"])).text
        history = await browser.get("/members/dangthutai/signins")
        assert history.status_code == 200
        mine = await browser.get("/me/signins")
        assert "Thành công" in mine.text
