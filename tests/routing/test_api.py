"""The staff API: the units a token carries, refusals that say what state the case is in and what
to do first, and resolving straight from "assigned" as an implicit accept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.routing.app import create_app
from services.routing.lifecycle import STATUS_WORDS, explain_refusal
from services.routing.settings import Settings
from shared.auth import read_token
from shared.events import derived_id
from shared.scope import may_see_unit
from tests.routing.test_flow import HAMLET, HAMLET_LEADER, ROADS_MEMBER, Routing, open_case
from tests.routing.test_flow import submitted as submitted_event
from tests.support import connect_nats, eventually, service_nats

WARD_LEADER = "danguy.myhoahung"
SECRET = "test-secret-" + "x" * 32


@pytest.fixture
async def routing(nats_url: str, database_url: str) -> AsyncIterator[Routing]:
    settings = Settings(
        env="test",
        **service_nats(nats_url, "routing"),
        database_url=database_url,
        seed_demo=True,
        secret_key=SECRET,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        nc = await connect_nats(nats_url)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://routing"
            ) as client:
                yield Routing(app, client, nc.jetstream())
        finally:
            await nc.close()


async def raw_token(routing: Routing, username: str) -> str:
    response = await routing.client.post(
        "/api/v1/auth/token", data={"username": username, "password": "demo"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.mark.parametrize(
    ("username", "units"),
    [
        (ROADS_MEMBER, {HAMLET}),
        (HAMLET_LEADER, {HAMLET}),
        (WARD_LEADER, {"my-hoa-hung", HAMLET}),
        (
            "bithu.thoiana",
            {"my-thoi-thoi-an-a", *(f"my-thoi-thoi-an-a-to-{i}" for i in range(1, 5))},
        ),
        ("admin", set()),
    ],
)
async def test_sign_in_fills_the_units_a_person_may_see(
    routing: Routing, username: str, units: set[str]
) -> None:
    staff = read_token(await raw_token(routing, username), secret=SECRET)
    assert set(staff.units) == units
    assert staff.is_admin == (username == "admin")
    if staff.is_admin:
        assert may_see_unit(staff, HAMLET)
    me = await routing.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {await raw_token(routing, username)}"}
    )
    assert set(me.json()["units"]) == units


def detail_for(action: str, status: str) -> str:
    return " / ".join(explain_refusal(action, status))


async def test_refusals_say_the_state_in_words_and_what_to_do(routing: Routing) -> None:
    case_id = (await open_case(routing, submitted_event()))["case_id"]
    url = f"/api/v1/cases/{case_id}"
    member = await routing.token(ROADS_MEMBER)
    assert (await routing.client.post(f"{url}/accept", headers=member)).status_code == 200

    again = await routing.client.post(f"{url}/accept", headers=member)
    assert again.status_code == 409
    problem = again.json()
    assert problem["current_status"] == "accepted"
    assert problem["detail"] == detail_for("accept", "accepted")
    assert problem["detail"] == (
        "Không thể nhận hồ sơ vì hồ sơ đang xử lý. Hồ sơ đã được nhận; bạn có thể ghi chú, hỏi "
        "người dân hoặc báo đã giải quyết. / This case cannot be accepted because it is being "
        "handled. It was already accepted; you can add a note, ask the resident or resolve it."
    )

    asked = await routing.client.post(f"{url}/ask", json={"question": "Số nhà?"}, headers=member)
    assert asked.status_code == 200, asked.text
    twice = await routing.client.post(f"{url}/ask", json={"question": "Hẻm?"}, headers=member)
    assert twice.status_code == 409
    assert twice.json()["detail"] == detail_for("ask", "waiting_for_resident")
    assert "Wait for the resident to answer" in twice.json()["detail"]
    declined = await routing.client.post(
        f"{url}/decline", json={"reason_code": "not_my_area"}, headers=member
    )
    assert declined.status_code == 409
    assert "waiting for the resident's answer" in declined.json()["detail"]

    resolved = await routing.client.post(
        f"{url}/resolve", json={"explanation": "Đã sửa"}, headers=member
    )
    assert resolved.status_code == 200, resolved.text
    late = await routing.client.post(f"{url}/resolve", json={"explanation": "x"}, headers=member)
    assert late.json()["detail"] == detail_for("resolve", "resolved")
    assert "đã giải quyết, chờ người dân xác nhận" in late.json()["detail"]

    ward = await routing.token(WARD_LEADER)
    escalated = await routing.client.post(f"{url}/escalate", json={}, headers=ward)
    assert escalated.status_code == 409
    assert escalated.json()["detail"] == detail_for("escalate", "resolved")


async def test_a_finished_case_says_nothing_more_can_be_done(routing: Routing) -> None:
    case_id = (await open_case(routing, submitted_event()))["case_id"]
    url = f"/api/v1/cases/{case_id}"
    ward = await routing.token(WARD_LEADER)
    rejected = await routing.client.post(
        f"{url}/reject", json={"reason": "Trùng phản ánh khác"}, headers=ward
    )
    assert rejected.json()["status"] == "rejected"
    for action, body in (
        ("notes", {"note": "x"}),
        ("take-over", None),
        ("reject", {"reason": "x"}),
    ):
        response = await routing.client.post(f"{url}/{action}", json=body, headers=ward)
        assert response.status_code == 409, action
        assert "The case is finished" in response.json()["detail"]
        assert "đã bị từ chối xử lý" in response.json()["detail"]


def test_every_refusal_is_two_whole_sentences() -> None:
    for action in ("accept", "note", "resolve", "decline", "ask", "reassign", "escalate"):
        for status, (vi_state, en_state) in STATUS_WORDS.items():
            vi, en = explain_refusal(action, status)
            assert vi_state in vi
            assert en_state in en
            assert vi.startswith("Không thể ")
            assert en.startswith("This case cannot be ")
            assert "'" + status + "'" not in vi + en
            assert " / " not in vi + en
    vi, en = explain_refusal("accept", "accepted", concurrent=True)
    assert "tải lại" in vi
    assert "Reload" in en


async def test_resolving_an_assigned_case_accepts_it_first(routing: Routing) -> None:
    assigned = await open_case(routing, submitted_event())
    case_id = assigned["case_id"]
    member = await routing.token(ROADS_MEMBER)
    before = (await routing.client.get(f"/api/v1/cases/{case_id}", headers=member)).json()
    resolved = await routing.client.post(
        f"/api/v1/cases/{case_id}/resolve",
        json={"explanation": "Điện lực đã thay bóng"},
        headers=member,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["due_at"] is None

    async def both() -> list[tuple[str, dict[str, Any]]]:
        mine = [(s, e) for s, e in await routing.events() if e.get("case_id") == case_id]
        return (
            mine
            if [s for s, _ in mine][-2:]
            == [
                "petitions.accepted.v1",
                "petitions.resolved.v1",
            ]
            else []
        )

    events = await eventually(both, what="accepted then resolved on the stream")
    (_, accepted), (_, resolution) = events[-2:]
    seq = before["version"] + 1
    assert accepted["event_id"] == str(derived_id(case_id, 0, "accepted", seq))
    assert resolution["event_id"] == str(derived_id(case_id, 0, "resolved", seq))
    assert accepted["member_id"] == resolution["member_id"]
    detail = (await routing.client.get(f"/api/v1/cases/{case_id}", headers=member)).json()
    assert [h["kind"] for h in detail["history"]] == [
        "submitted",
        "assigned",
        "accepted",
        "resolved",
    ]


async def test_members_mark_themselves_away_but_not_others(routing: Routing) -> None:
    member = await routing.token(ROADS_MEMBER)
    body = {"from": "2030-01-01T00:00:00+07:00", "until": "2030-01-05T00:00:00+07:00"}
    me = (await routing.client.get("/api/v1/me", headers=member)).json()
    own = await routing.client.post(
        f"/api/v1/members/{me['member_id']}/absence", json=body, headers=member
    )
    assert own.status_code == 200, own.text
    other = await routing.client.post(
        "/api/v1/members/dokimhanh/absence", json=body, headers=member
    )
    assert other.status_code == 403
    backwards = await routing.client.post(
        f"/api/v1/members/{me['member_id']}/absence",
        json={"from": body["until"], "until": body["from"]},
        headers=member,
    )
    assert backwards.status_code == 422


async def test_openapi_still_builds(routing: Routing) -> None:
    response = await routing.client.get("/openapi.json")
    assert response.status_code == 200
    assert "/api/v1/cases/{case_id}/resolve" in response.json()["paths"]
    assert "/cases/{case_id}" not in response.json()["paths"]


async def test_unknown_case_is_not_found(routing: Routing) -> None:
    member = await routing.token(ROADS_MEMBER)
    response = await routing.client.post(f"/api/v1/cases/{uuid.uuid4()}/accept", headers=member)
    assert response.status_code == 404


async def test_the_case_says_what_the_caller_may_do_now(routing: Routing) -> None:
    case_id = (await open_case(routing, submitted_event()))["case_id"]
    url = f"/api/v1/cases/{case_id}"
    member = await routing.token(ROADS_MEMBER)
    ward = await routing.token(WARD_LEADER)
    held = (await routing.client.get(url, headers=member)).json()
    assert held["allowed_actions"] == ["accept", "ask", "decline", "note", "resolve"]
    led = (await routing.client.get(url, headers=ward)).json()
    assert led["allowed_actions"] == [
        "escalate",
        "note",
        "reassign",
        "reject",
        "resolve",
        "take-over",
    ]
    # What it says is what the actions do: a leader may not accept for the holder.
    assert (await routing.client.post(f"{url}/accept", headers=ward)).status_code == 403
    accepted = await routing.client.post(f"{url}/accept", headers=member)
    assert accepted.json()["allowed_actions"] == ["ask", "decline", "note", "resolve"]
    listed = (await routing.client.get("/api/v1/cases", headers=member)).json()
    assert [c["allowed_actions"] for c in listed if c["id"] == case_id] == [
        ["ask", "decline", "note", "resolve"]
    ]
