"""The member workspace over HTTP, as a browser without JavaScript uses it: sign-in and its
cookie, CSRF, every action as a form, who may see what, escaping, and the English switch."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.routing import models
from services.routing.app import create_app
from services.routing.settings import Settings
from shared.auth import SESSION_COOKIE
from shared.events import PetitionSubmitted
from tests.routing.test_flow import HAMLET, HAMLET_LEADER, ROADS_MEMBER, Routing, open_case
from tests.routing.test_flow import submitted as submitted_event
from tests.support import connect_nats, service_nats

BASE = "http://127.0.0.1:8001"
WARD_LEADER = "danguy.myhoahung"


@dataclass
class Workspace:
    routing: Routing

    @property
    def app(self) -> FastAPI:
        return self.routing.app

    def browser(self) -> httpx.AsyncClient:
        """A fresh browser: its own cookie jar."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)

    @asynccontextmanager
    async def signed_in(self, username: str) -> AsyncIterator[httpx.AsyncClient]:
        async with self.browser() as client:
            response = await client.post("/signin", data={"username": username, "password": "demo"})
            assert response.status_code == 303, response.text
            yield client

    async def case(self, event: PetitionSubmitted | None = None) -> str:
        return str((await open_case(self.routing, event or submitted_event()))["case_id"])

    async def status(self, case_id: str) -> str:
        k = models.cases
        async with self.routing.runtime.engine.connect() as conn:
            return str(await conn.scalar(select(k.c.status).where(k.c.id == case_id)))


@pytest.fixture
async def workspace(nats_url: str, sqlite_url: str) -> AsyncIterator[Workspace]:
    settings = Settings(
        env="test", **service_nats(nats_url, "routing"), database_url=sqlite_url, seed_demo=True
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=BASE
            ) as client:
                yield Workspace(Routing(app, client, nc.jetstream()))
        finally:
            await nc.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def act(
    client: httpx.AsyncClient, case_id: str, action: str, **fields: str
) -> httpx.Response:
    """Open the case page, then post the action's form as the browser would."""
    page = await client.get(f"/cases/{case_id}")
    assert page.status_code == 200, page.text
    return await client.post(
        f"/cases/{case_id}/{action}",
        data={"csrf": csrf_of(page.text), **fields},
        headers={"Origin": BASE},
    )


async def test_sign_in_sets_the_session_cookie_and_signs_out(workspace: Workspace) -> None:
    async with workspace.browser() as client:
        assert (await client.get("/")).headers["location"] == "/signin"
        form = await client.get("/signin")
        assert form.status_code == 200
        assert 'name="password"' in form.text
        assert "Đăng nhập" in form.text

        response = await client.post("/signin", data={"username": ROADS_MEMBER, "password": "demo"})
        assert (response.status_code, response.headers["location"]) == (303, "/cases")
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie  # only in production
        assert (await client.get("/")).headers["location"] == "/cases"
        listing = await client.get("/cases")
        assert listing.status_code == 200
        assert "Hồ sơ của tôi" in listing.text

        # The API accepts the same cookie.
        assert (await client.get("/api/v1/me")).json()["username"] == ROADS_MEMBER

        refused = await client.post("/signout", data={})
        assert refused.status_code == 403
        out = await client.post(
            "/signout", data={"csrf": csrf_of(listing.text)}, headers={"Origin": BASE}
        )
        assert out.status_code == 303
        assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
        assert (await client.get("/cases")).status_code == 303


async def test_a_wrong_password_keeps_the_username_and_says_so_in_both_languages(
    workspace: Workspace,
) -> None:
    async with workspace.browser() as client:
        response = await client.post(
            "/signin", data={"username": ROADS_MEMBER, "password": "wrong"}
        )
        assert response.status_code == 400
        assert "Sai tên đăng nhập hoặc mật khẩu." in response.text
        assert "Wrong username or password." in response.text
        assert f'value="{ROADS_MEMBER}"' in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_failed_sign_ins_are_throttled_per_username_and_address(
    workspace: Workspace,
) -> None:
    async with workspace.browser() as client:
        for _ in range(5):
            wrong = await client.post("/signin", data={"username": "dokimhanh", "password": "x"})
            assert wrong.status_code == 400
        blocked = await client.post("/signin", data={"username": "dokimhanh", "password": "demo"})
        assert blocked.status_code == 429
        # The page says so in both languages, with how long to wait.
        assert "Đăng nhập sai quá nhiều lần" in blocked.text
        assert "Too many failed sign-ins" in blocked.text
        assert 0 < int(blocked.headers["retry-after"]) <= 15 * 60
        api = await client.post(
            "/api/v1/auth/token", data={"username": "dokimhanh", "password": "demo"}
        )
        assert api.status_code == 429
        assert api.headers["content-type"] == "application/problem+json"
        assert api.json()["retry_after"] == int(api.headers["retry-after"])
        # Another account from the same address is not affected.
        other = await client.post("/signin", data={"username": ROADS_MEMBER, "password": "demo"})
        assert other.status_code == 303


@pytest.mark.parametrize(
    ("next_", "expected"),
    [
        ("/cases/abc?x=1", "/cases/abc?x=1"),
        ("http://127.0.0.1:8002/dashboard", "http://127.0.0.1:8002/dashboard"),
        ("http://127.0.0.1:8000/track/x", "http://127.0.0.1:8000/track/x"),
        ("https://evil.example/", "/cases"),
        ("//evil.example/", "/cases"),
        ("http://127.0.0.1:8001@evil.example/", "/cases"),
        ("http://127.0.0.1:80011/", "/cases"),
        ("/\\evil.example", "/cases"),
        ("javascript:alert(1)", "/cases"),
    ],
)
async def test_next_goes_only_to_our_services(
    workspace: Workspace, next_: str, expected: str
) -> None:
    async with workspace.browser() as client:
        response = await client.post(
            "/signin", data={"username": ROADS_MEMBER, "password": "demo", "next": next_}
        )
        assert (response.status_code, response.headers["location"]) == (303, expected)


async def test_the_email_link_lands_on_the_case_after_sign_in(workspace: Workspace) -> None:
    case_id = await workspace.case()
    async with workspace.browser() as client:
        first = await client.get(f"/cases/{case_id}")
        assert first.status_code == 303
        location = first.headers["location"]
        assert location == f"/signin?next={quote(f'/cases/{case_id}', safe='')}"
        form = await client.get(location)
        assert f'name="next" value="/cases/{case_id}"' in form.text
        signed = await client.post(
            "/signin",
            data={"username": ROADS_MEMBER, "password": "demo", "next": f"/cases/{case_id}"},
        )
        assert signed.headers["location"] == f"/cases/{case_id}"
        page = await client.get(signed.headers["location"])
        assert page.status_code == 200
        assert "Đèn đường hỏng" in page.text


async def test_posts_without_the_csrf_token_or_from_elsewhere_are_refused(
    workspace: Workspace,
) -> None:
    case_id = await workspace.case()
    async with workspace.signed_in(ROADS_MEMBER) as client:
        page = await client.get(f"/cases/{case_id}")
        token = csrf_of(page.text)
        missing = await client.post(f"/cases/{case_id}/accept", data={})
        assert missing.status_code == 403
        forged = await client.post(f"/cases/{case_id}/accept", data={"csrf": "0" * 64})
        assert forged.status_code == 403
        foreign = await client.post(
            f"/cases/{case_id}/accept",
            data={"csrf": token},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        opaque = await client.post(
            f"/cases/{case_id}/accept", data={"csrf": token}, headers={"Origin": "null"}
        )
        assert opaque.status_code == 403
        referer = await client.post(
            f"/cases/{case_id}/accept",
            data={"csrf": token},
            headers={"Referer": "https://evil.example/page"},
        )
        assert referer.status_code == 403
        assert "Yêu cầu bị từ chối" in referer.text
        assert await workspace.status(case_id) == "assigned"

        # Another session's token does not fit this one.
        async with workspace.signed_in(ROADS_MEMBER) as other:
            other_token = csrf_of((await other.get("/cases")).text)
        if other_token != token:
            stolen = await client.post(f"/cases/{case_id}/accept", data={"csrf": other_token})
            assert stolen.status_code == 403

        ok = await client.post(
            f"/cases/{case_id}/accept",
            data={"csrf": token},
            headers={"Referer": f"{BASE}/cases/{case_id}"},
        )
        assert ok.status_code == 303
        assert await workspace.status(case_id) == "accepted"


async def test_a_member_works_a_case_through_the_forms(workspace: Workspace) -> None:
    case_id = await workspace.case()
    async with workspace.signed_in(ROADS_MEMBER) as client:
        listing = await client.get("/cases")
        assert f"/cases/{case_id}" in listing.text
        assert "Hạn nhận" in listing.text

        page = await client.get(f"/cases/{case_id}")
        assert "Cán bộ phụ trách địa bàn" in page.text
        assert "đã giao, chờ nhận" in page.text
        assert 'action="/cases/' + case_id + '/reassign"' not in page.text  # not a leader

        accepted = await act(client, case_id, "accept")
        assert accepted.headers["location"] == f"/cases/{case_id}?done=accept"
        shown = await client.get(accepted.headers["location"])
        assert "Đã nhận hồ sơ." in shown.text
        assert "đang xử lý" in shown.text

        # A stale form: the case is already accepted.
        stale = await client.post(f"/cases/{case_id}/accept", data={"csrf": csrf_of(shown.text)})
        assert stale.status_code == 409
        assert "Không thể nhận hồ sơ vì hồ sơ đang xử lý." in stale.text
        assert "This case cannot be accepted because it is being handled." in stale.text
        # The language switch on a page answering a POST reloads the case, not the action.
        assert f'href="/cases/{case_id}?lang=en"' in stale.text

        noted = await act(client, case_id, "note", note="Đã báo điện lực")
        assert "Đã thêm ghi chú." in (await client.get(noted.headers["location"])).text

        empty = await act(client, case_id, "note", note="   ")
        assert empty.status_code == 422
        assert "Vui lòng nhập ghi chú." in empty.text

        asked = await act(client, case_id, "ask", question="Cột đèn số mấy?")
        after_ask = await client.get(asked.headers["location"])
        assert "Đã gửi câu hỏi cho người dân" in after_ask.text
        assert "Cột đèn số mấy?" in after_ask.text
        assert await workspace.status(case_id) == "waiting_for_resident"

        typed = "Điện lực đã thay bóng đèn"
        resolved = await act(client, case_id, "resolve", explanation=typed)
        after = await client.get(resolved.headers["location"])
        assert "Đã báo giải quyết." in after.text
        assert typed in after.text
        assert await workspace.status(case_id) == "resolved"

        again = await client.post(
            f"/cases/{case_id}/resolve",
            data={"csrf": csrf_of(after.text), "explanation": "lần nữa"},
        )
        assert again.status_code == 409
        assert "đã giải quyết, chờ người dân xác nhận" in again.text


async def test_resolving_from_assigned_on_the_page_accepts_it(workspace: Workspace) -> None:
    case_id = await workspace.case()
    async with workspace.signed_in(ROADS_MEMBER) as client:
        page = await client.get(f"/cases/{case_id}")
        assert "Báo đã giải quyết cũng đồng thời nhận hồ sơ." in page.text
        resolved = await act(client, case_id, "resolve", explanation="Đã xong")
        assert resolved.status_code == 303
        shown = await client.get(resolved.headers["location"])
        assert "Nhận hồ sơ" in shown.text
        assert "Báo đã giải quyết" in shown.text
    assert await workspace.status(case_id) == "resolved"


async def test_decline_hands_the_case_on_and_the_former_holder_only_reads(
    workspace: Workspace,
) -> None:
    case_id = await workspace.case()
    async with workspace.signed_in(ROADS_MEMBER) as client:
        missing = await act(client, case_id, "decline", reason_code="nonsense")
        assert missing.status_code == 422
        declined = await act(
            client, case_id, "decline", reason_code="conflict_of_interest", comment="Nhà tôi"
        )
        assert declined.status_code == 303
        shown = await client.get(declined.headers["location"])
        assert "Đã trả lại hồ sơ" in shown.text
        assert "Tôi có xung đột lợi ích" in shown.text
        assert "Bạn không có thao tác nào" in shown.text
        # The form is gone, and posting it anyway is refused.
        refused = await client.post(f"/cases/{case_id}/accept", data={"csrf": csrf_of(shown.text)})
        assert refused.status_code == 403
        # Accepting is the holder's alone (`permissions`): a unit leader takes the case over.
        assert "Chỉ người đang giữ hồ sơ mới nhận được" in refused.text


async def test_a_member_cannot_see_or_act_on_someone_elses_case(workspace: Workspace) -> None:
    case_id = await workspace.case()
    async with workspace.signed_in("dokimhanh") as client:
        page = await client.get(f"/cases/{case_id}")
        assert page.status_code == 404
        assert "Không tìm thấy hồ sơ." in page.text
        token = csrf_of((await client.get("/cases")).text)
        posted = await client.post(f"/cases/{case_id}/accept", data={"csrf": token})
        assert posted.status_code == 404
        assert (await client.get(f"/cases/{uuid.uuid4()}")).status_code == 404
        assert (await client.get("/cases/not-a-uuid")).status_code == 404
        # No unit toggle for a member: scope=unit shows their own cases only.
        listing = await client.get("/cases?scope=unit")
        assert f"/cases/{case_id}" not in listing.text
    assert await workspace.status(case_id) == "assigned"


async def test_leaders_reassign_escalate_take_over_and_leadership_rejects(
    workspace: Workspace,
) -> None:
    case_id = await workspace.case()
    async with workspace.signed_in(HAMLET_LEADER) as leader:
        mine = await leader.get("/cases")
        assert f"/cases/{case_id}" not in mine.text
        unit = await leader.get("/cases?scope=unit")
        assert f"/cases/{case_id}" in unit.text

        page = await leader.get(f"/cases/{case_id}")
        assert 'option value="dokimhanh"' in page.text
        assert 'option value="' + ROADS_MEMBER + '"' not in page.text  # the holder
        assert "/reject" not in page.text  # a unit leader is not leadership
        moved = await act(leader, case_id, "reassign", member_id="dokimhanh")
        assert "Đã giao lại hồ sơ." in (await leader.get(moved.headers["location"])).text

        bad = await act(leader, case_id, "reassign", member_id="dangthutai")
        assert bad.status_code == 422
        assert "không phục vụ đơn vị này" in bad.text

        taken = await act(leader, case_id, "take-over")
        after = await leader.get(taken.headers["location"])
        assert "Bạn đã trực tiếp nhận xử lý hồ sơ." in after.text
        assert "Lãnh đạo đơn vị" in after.text
        assert await workspace.status(case_id) == "accepted"

        escalated = await act(leader, case_id, "escalate", comment="Cần xã quyết định")
        after = await leader.get(escalated.headers["location"])
        assert "Đã chuyển hồ sơ lên cấp trên." in after.text
        assert "Cần xã quyết định" in after.text

    async with workspace.signed_in(WARD_LEADER) as ward:
        page = await ward.get(f"/cases/{case_id}")
        assert "Lãnh đạo phường, xã" in page.text
        empty = await act(ward, case_id, "reject", reason="")
        assert empty.status_code == 422
        rejected = await act(ward, case_id, "reject", reason="Ngoài thẩm quyền")
        shown = await ward.get(rejected.headers["location"])
        assert "Đã từ chối xử lý hồ sơ." in shown.text
        assert "Ngoài thẩm quyền" in shown.text
    assert await workspace.status(case_id) == "rejected"


async def test_what_a_resident_wrote_is_shown_as_text(workspace: Workspace) -> None:
    event = PetitionSubmitted.new(
        producer="intake",
        petition_id=uuid.uuid4(),
        reference="MHH-2025-0002",
        unit_id=HAMLET,
        category_id="roads_lighting",
        title="<script>alert('t')</script>",
        description='<img src=x onerror="alert(1)"> & <b>đèn</b>',
        location="<i>hẻm</i>",
    )
    case_id = await workspace.case(event)
    async with workspace.signed_in(ROADS_MEMBER) as client:
        for url in (f"/cases/{case_id}", "/cases"):
            html = (await client.get(url)).text
            assert "<script>alert" not in html
            assert "&lt;script&gt;" in html
        html = (await client.get(f"/cases/{case_id}")).text
        assert "<img" not in html
        assert "<b>đèn" not in html
        assert "<i>hẻm" not in html
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; &lt;b&gt;đèn&lt;/b&gt;" in html
        response = await client.get(f"/cases/{case_id}")
        assert "script-src" not in response.headers["content-security-policy"]
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_the_point_a_resident_gave_links_to_a_map_on_the_case(
    workspace: Workspace,
) -> None:
    event = PetitionSubmitted.new(
        producer="intake",
        petition_id=uuid.uuid4(),
        reference="MHH-2025-0003",
        unit_id=HAMLET,
        category_id="roads_lighting",
        title="Ổ gà",
        description="Ổ gà giữa đường",
        latitude=10.37,
        longitude=105.43,
    )
    case_id = await workspace.case(event)
    async with workspace.signed_in(ROADS_MEMBER) as client:
        html = (await client.get(f"/cases/{case_id}")).text
        assert (
            'href="https://www.openstreetmap.org/?mlat=10.370000&amp;mlon=105.430000'
            '#map=18/10.370000/105.430000"'
        ) in html
        assert "10.370000, 105.430000" in html
    without = await workspace.case()
    async with workspace.signed_in(ROADS_MEMBER) as client:
        assert 'id="map-link"' not in (await client.get(f"/cases/{without}")).text


async def test_english_on_request_and_remembered(workspace: Workspace) -> None:
    case_id = await workspace.case()
    async with workspace.browser() as client:
        form = await client.get("/signin?lang=en")
        assert "Staff sign-in" in form.text
        assert "lang=en" in form.headers["set-cookie"]
        wrong = await client.post("/signin", data={"username": ROADS_MEMBER, "password": "x"})
        assert wrong.text.index("Wrong username or password.") < wrong.text.index(
            "Sai tên đăng nhập"
        )
        await client.post("/signin", data={"username": ROADS_MEMBER, "password": "demo"})
        page = await client.get(f"/cases/{case_id}")
        assert "Member serving the area" in page.text
        assert "assigned, waiting to be accepted" in page.text
        assert "Accept" in page.text
        assert "Tiếng Việt" in page.text
        accepted = await act(client, case_id, "accept")
        assert "Case accepted." in (await client.get(accepted.headers["location"])).text
        back = await client.get(f"/cases/{case_id}?lang=vi")
        assert "Cán bộ phụ trách địa bàn" in back.text


async def test_a_member_marks_themselves_away(workspace: Workspace) -> None:
    async with workspace.signed_in(ROADS_MEMBER) as client:
        page = await client.get("/me/absence")
        assert "Bạn không đặt vắng mặt." in page.text
        token = csrf_of(page.text)
        bad = await client.post(
            "/me/absence", data={"csrf": token, "from": "2030-02-10", "until": "2030-02-01"}
        )
        assert bad.status_code == 422
        assert "Ngày về phải sau ngày đi." in bad.text
        assert 'value="2030-02-10"' in bad.text
        saved = await client.post(
            "/me/absence", data={"csrf": token, "from": "2030-02-01", "until": "2030-02-10"}
        )
        assert saved.headers["location"] == "/me/absence?done=absence"
        shown = await client.get(saved.headers["location"])
        assert "Đã lưu thời gian vắng mặt." in shown.text
        # Whole local days: 00:00 on the first day to 00:00 after the last, Vietnam time.
        assert "01/02/2030 00:00" in shown.text
        assert "11/02/2030 00:00" in shown.text
        m = models.members
        async with workspace.routing.runtime.engine.connect() as conn:
            row = (await conn.execute(select(m).where(m.c.username == ROADS_MEMBER))).one()
        assert row.away_from.isoformat() == "2030-01-31T17:00:00+00:00"
        back = await client.post("/me/absence", data={"csrf": token, "back": "1"})
        assert "Bạn không đặt vắng mặt." in (await client.get(back.headers["location"])).text
