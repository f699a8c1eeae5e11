"""The public JSON API against the real app, a real nats-server and SQLite/PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from services.intake.models import contacts, messaging, petitions, public_timeline
from services.intake.petitions import hash_token, parse_reference
from shared.events import PetitionSubmitted
from shared.streams import PETITIONS_STREAM
from tests.intake.conftest import PUBLIC_URL, VALID, Intake
from tests.support import eventually


async def row_counts(intake: Intake) -> dict[str, int]:
    async with intake.runtime.engine.connect() as conn:
        return {
            t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in (petitions, contacts, public_timeline, messaging.outbox)
        }


async def test_submitted_petition_is_stored_and_announced_on_jetstream(intake: Intake) -> None:
    body = await intake.submit()

    assert body["status"] == "submitted"
    assert parse_reference(body["reference"]) == body["reference"]
    assert body["tracking_url"] == f"{PUBLIC_URL}/track/{body['tracking_token']}"

    async def published() -> Any:
        try:
            return await intake.js.get_last_msg(PETITIONS_STREAM, PetitionSubmitted.subject)
        except Exception:
            return None

    msg = await eventually(published, what="PetitionSubmitted on the stream")
    event = PetitionSubmitted.model_validate_json(msg.data or b"")
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == str(event.event_id)
    assert str(event.petition_id) == body["petition_id"]
    assert event.reference == body["reference"]
    assert event.producer == "intake"
    assert event.unit_id == VALID["unit_id"]
    assert event.wants_updates is True
    # Contact data never travels in events.
    assert VALID["phone"] not in msg.data.decode()
    assert VALID["email"] not in msg.data.decode()

    async with intake.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(petitions))).mappings().one()
        contact = (await conn.execute(select(contacts))).mappings().one()
    assert stored["tracking_token_hash"] == hash_token(body["tracking_token"])
    assert body["tracking_token"] not in json.dumps({k: str(v) for k, v in stored.items()})
    assert body["tracking_token"] not in json.dumps({k: str(v) for k, v in contact.items()})
    assert contact["wants_updates"] is True


async def test_one_submission_writes_its_rows_together(intake: Intake) -> None:
    """The petition, its contact, its first timeline line and its outbox event, each once and
    pointing at one another (one statement on PostgreSQL, several on SQLite)."""
    body = await intake.submit()
    assert await row_counts(intake) == dict.fromkeys(
        ("petitions", "contacts", "public_timeline", "outbox"), 1
    )
    async with intake.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(petitions))).mappings().one()
        contact = (await conn.execute(select(contacts))).mappings().one()
        line = (await conn.execute(select(public_timeline))).mappings().one()
        outbox = (await conn.execute(select(messaging.outbox))).mappings().one()
    event = PetitionSubmitted.model_validate_json(outbox["payload"])
    assert stored["id"] == contact["petition_id"] == line["petition_id"] == body["petition_id"]
    assert stored["correlation_id"] == line["event_id"] == outbox["event_id"]
    assert str(event.event_id) == outbox["event_id"]
    assert (stored["status"], line["kind"]) == ("submitted", "submitted")
    assert stored["submitted_at"] == stored["status_changed_at"] == line["occurred_at"]
    assert stored["submitted_at"].tzinfo is not None
    assert line["message_en"] == f"Petition received, reference {body['reference']}."
    assert (contact["name"], contact["email"]) == (VALID["name"], VALID["email"])


async def test_notify_without_a_way_to_reach_the_resident_wants_no_updates(
    intake: Intake,
) -> None:
    await intake.submit(phone=None, email=None, name=None)
    async with intake.runtime.engine.connect() as conn:
        outbox_payload: str = await conn.scalar(select(messaging.outbox.c.payload)) or ""
    assert PetitionSubmitted.model_validate_json(outbox_payload).wants_updates is False


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("missing unit", {k: v for k, v in VALID.items() if k != "unit_id"}, "unit_id"),
    ("missing title", {**VALID, "title": "   "}, "title"),
    ("missing description", {k: v for k, v in VALID.items() if k != "description"}, "description"),
    ("title too long", {**VALID, "title": "x" * 201}, "title"),
    ("description too long", {**VALID, "description": "x" * 5001}, "description"),
    ("location too long", {**VALID, "location": "x" * 301}, "location"),
    ("name too long", {**VALID, "name": "x" * 101}, "name"),
    ("bad phone", {**VALID, "phone": "call me"}, "phone"),
    ("bad email", {**VALID, "email": "not-an-email"}, "email"),
    ("unknown unit", {**VALID, "unit_id": "hanoi"}, "unit_id"),
    ("ward is not where one lives", {**VALID, "unit_id": "my-thoi"}, "unit_id"),
    ("unknown category", {**VALID, "category_id": "weather"}, "category_id"),
    ("no consent", {**VALID, "consent": False}, "consent"),
    ("consent missing", {k: v for k, v in VALID.items() if k != "consent"}, "consent"),
    ("consent as a string", {**VALID, "consent": "yes"}, "consent"),
    ("title not text", {**VALID, "title": 42}, "title"),
    ("notify not a flag", {**VALID, "notify": "maybe"}, "notify"),
]


async def test_bad_input_is_a_problem_naming_the_field_and_stores_nothing(
    intake: Intake,
) -> None:
    before = await row_counts(intake)
    for case, body, field in BAD_BODIES:
        response = await intake.client.post("/api/v1/petitions", json=body)
        assert response.status_code == 422, case
        assert response.headers["content-type"] == "application/problem+json", case
        problem = response.json()
        assert field in [e["field"] for e in problem["errors"]], (case, problem)
        assert field in problem["detail"], case

    raw_cases: list[tuple[str, bytes, str, int]] = [
        ("not json", b"{title: oops", "application/json", 400),
        ("json array", b"[1, 2]", "application/json", 422),
        ("form body", b"title=x", "application/x-www-form-urlencoded", 415),
        ("no content type", json.dumps(VALID).encode(), "", 415),
        ("text", json.dumps(VALID).encode(), "text/plain", 415),
        ("too large", json.dumps({**VALID, "pad": "x" * 70_000}).encode(), "application/json", 413),
        ("bad utf-8", b'{"title": "\xff\xfe"}', "application/json", 400),
        ("deeply nested", b"[" * 60_000, "application/json", 400),
    ]
    for case, content, content_type, status in raw_cases:
        headers = {"content-type": content_type} if content_type else {}
        response = await intake.client.post("/api/v1/petitions", content=content, headers=headers)
        assert response.status_code == status, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json", case
        if status == 400:
            assert response.json()["errors"][0]["field"] == "body"

    assert await row_counts(intake) == before == dict.fromkeys(before, 0)


async def test_text_with_control_characters_is_stored_clean(intake: Intake) -> None:
    body = await intake.submit(title="Đèn\x00 hỏng\x07", description="dòng 1\ndòng 2")
    view = await intake.track(body["tracking_token"])
    assert view["title"] == "Đèn hỏng"
    assert view["description"] == "dòng 1\ndòng 2"


async def test_public_status_by_reference_shows_no_content_or_contact(intake: Intake) -> None:
    body = await intake.submit()

    response = await intake.client.get(f"/api/v1/petitions/{body['reference'].lower()}")

    assert response.status_code == 200
    view = response.json()
    assert view["reference"] == body["reference"]
    assert view["status"] == "submitted"
    assert view["status_label"] == {"vi": "Đã tiếp nhận", "en": "Submitted"}
    assert view["unit"]["name"] == "Phường Mỹ Thới › Khóm Thới An A › Tổ dân phố 2"
    assert view["category"]["name_en"] == "Roads and lighting"
    text = response.text
    for secret in (VALID["title"], VALID["description"], VALID["phone"], VALID["email"]):
        assert str(secret) not in text
    assert body["tracking_token"] not in text


async def test_unknown_reference_or_token_is_404(intake: Intake) -> None:
    for path in (
        "/api/v1/petitions/PA-0000-0000",
        "/api/v1/petitions/nonsense",
        "/api/v1/track/not-a-token",
    ):
        response = await intake.client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


async def test_tracking_view_shows_content_and_masked_contact(intake: Intake) -> None:
    body = await intake.submit()

    view = await intake.track(body["tracking_token"])

    assert view["title"] == VALID["title"]
    assert view["description"] == VALID["description"]
    assert view["contact"] == {
        "name": "Nguyễn Văn A",
        "email": "a***@example.vn",
        "phone": "***678",
    }
    assert [t["kind"] for t in view["timeline"]] == ["submitted"]
    assert view["timeline"][0]["occurred_at"].endswith("+00:00")
    assert view["can_give_feedback"] is False


async def test_units_and_categories_for_the_form(intake: Intake) -> None:
    units = (await intake.client.get("/api/v1/units")).json()
    categories = (await intake.client.get("/api/v1/categories")).json()

    selectable = {u["id"] for u in units if u["selectable"]}
    assert selectable == {
        "my-thoi-thoi-an-a",
        "my-thoi-thoi-an-a-to-1",
        "my-thoi-thoi-an-a-to-2",
        "my-thoi-thoi-an-a-to-3",
        "my-thoi-thoi-an-a-to-4",
        "my-hoa-hung-my-khanh-2",
    }
    assert [c["id"] for c in categories] == [
        "roads_lighting",
        "environment_sanitation",
        "security_order",
        "social_policy",
        "economic_support",
        "land_construction",
        "administrative_procedures",
        "other",
    ]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_ops_endpoints(intake: Intake, path: str) -> None:
    response = await intake.client.get(path)
    assert response.status_code == 200, response.text


async def test_every_refused_field_is_explained_in_both_languages(intake: Intake) -> None:
    """Whether the model refuses the shape or the domain refuses the value, each field error
    carries Vietnamese and English."""
    body = {**VALID, "title": 42, "notify": "yes", "description": "  "}
    del body["consent"]
    response = await intake.client.post("/api/v1/petitions", json=body)
    assert response.status_code == 422
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert errors["title"]["message_vi"] == "phải là chuỗi ký tự"
    assert errors["title"]["message"] == "must be text"
    assert errors["notify"]["message_vi"] == "phải là true hoặc false"
    assert errors["consent"]["message_vi"] == "cần đồng ý để phản ánh được xử lý"

    blank = await intake.client.post("/api/v1/petitions", json={**VALID, "description": "\x01 "})
    assert blank.status_code == 422
    [error] = blank.json()["errors"]
    assert (error["field"], error["message_vi"]) == ("description", "không được để trống")

    listed = await intake.client.post("/api/v1/petitions", json=[VALID])
    assert listed.status_code == 422
    assert listed.json()["errors"][0]["field"] == "body"
    assert listed.json()["errors"][0]["message_vi"]


async def test_lone_surrogates_and_control_characters_are_cleaned_not_a_500(
    intake: Intake,
) -> None:
    """JSON may carry what no database stores (a lone surrogate, NUL); text loses it."""
    raw = json.dumps({**VALID, "title": "\ud800Đèn\x00 hỏng", "location": "\udfff"})
    response = await intake.client.post(
        "/api/v1/petitions", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    view = await intake.track(response.json()["tracking_token"])
    assert (view["title"], view["location"]) == ("Đèn hỏng", None)

    token = response.json()["tracking_token"]
    withdrawn = await intake.client.post(
        f"/api/v1/track/{token}/withdraw",
        content=json.dumps({"reason": "\x00\ud83d"}),
        headers={"content-type": "application/json"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    for path in ("/api/v1/petitions/%00", "/api/v1/track/%00%01", "/api/v1/petitions/PA-%ED%A0%80"):
        assert (await intake.client.get(path)).status_code == 404, path
