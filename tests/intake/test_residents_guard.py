"""Residents' safeguards: a lost tracking link asked for again (same answer whether or not it
matched, the link only to the petition's own contact), abuse kept out without a captcha (the
public rate limit per address and contact, a honeypot, a minimum fill time), and complaints and
denunciations sent where they belong, with nothing stored."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.intake.models import link_recoveries, petitions, public_hits
from services.intake.throttle import RateLimit, parse_rate_limit
from shared.events import PetitionSubmitted, TrackingLinkRequested
from shared.streams import RPC_CONTACT_LOOKUP
from tests.intake.conftest import VALID, Intake, open_intake

RECOVER = "/api/v1/track/recover"
FORM = {
    "unit_id": "my-hoa-hung-my-khanh-2",
    "category_id": "environment_sanitation",
    "title": "Rác ở đầu hẻm",
    "description": "Rác tồn đọng ba ngày.",
    "consent": "on",
}


async def count(intake: Intake) -> int:
    async with intake.runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(petitions)) or 0)


async def lookup(intake: Intake, petition_id: str, *, recover: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"petition_ids": [petition_id]}
    if recover:
        body["recover_links"] = [petition_id]
    reply = await intake.nc.request(RPC_CONTACT_LOOKUP, json.dumps(body).encode(), timeout=5)
    answer: dict[str, Any] = json.loads(reply.data)["contacts"][petition_id]
    return answer


def client_at(intake: Intake, address: str) -> httpx.AsyncClient:
    """Another resident's client: the same app from another address."""
    transport = httpx.ASGITransport(app=intake.app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://intake.test")


def test_rate_limit_settings_are_read_as_people_write_them() -> None:
    assert parse_rate_limit("10/minute") == RateLimit(10, timedelta(minutes=1))
    assert parse_rate_limit("3 / hours") == RateLimit(3, timedelta(hours=1))
    assert parse_rate_limit("off") is None
    for wrong in ("10", "0/minute", "ten/minute", "10/fortnight"):
        with pytest.raises(ValueError, match="PETITIONS_PUBLIC_RATE_LIMIT"):
            parse_rate_limit(wrong)


# Lost tracking link


async def test_recovery_answers_alike_and_sends_a_link_only_to_the_matching_contact(
    intake: Intake,
) -> None:
    receipt = await intake.submit()
    pid = receipt["petition_id"]
    wrong = await intake.client.post(
        RECOVER, json={"reference": receipt["reference"], "contact": "b@example.vn"}
    )
    unknown = await intake.client.post(
        RECOVER, json={"reference": "PA-0000-0000", "contact": "a@example.vn"}
    )
    # Typed as people do: another case, spaces around, the reference in lower case.
    right = await intake.client.post(
        RECOVER,
        json={"reference": receipt["reference"].lower(), "contact": "  A@Example.VN "},
    )
    assert wrong.status_code == unknown.status_code == right.status_code == 202
    assert wrong.json() == unknown.json() == right.json()
    assert "liên kết theo dõi mới" in right.json()["message"]["vi"]
    assert "new tracking link" in right.json()["message"]["en"]

    [event] = await intake.published(TrackingLinkRequested, 1)
    assert str(event.petition_id) == pid
    assert event.channel == "email"
    raw = event.to_json().decode()
    assert "a@example.vn" not in raw
    assert "0912" not in raw

    # Notify's look-up for the recovery: the matched email alone, with a fresh link.
    answer = await lookup(intake, pid, recover=True)
    recovery = answer["recovery"]
    assert recovery["email"] == "a@example.vn"
    assert "phone" not in recovery
    token = recovery["tracking_url"].rsplit("/", 1)[1]
    assert (await intake.track(token))["reference"] == receipt["reference"]
    assert recovery["tracking_url"] != answer["tracking_url"]
    # Any other look-up carries no recovery.
    assert "recovery" not in await lookup(intake, pid, recover=False)


async def test_recovery_by_phone_digits_reaches_a_resident_who_wanted_no_updates(
    intake: Intake,
) -> None:
    receipt = await intake.submit(email=None, notify=False)
    pid = receipt["petition_id"]
    response = await intake.client.post(
        RECOVER, json={"reference": receipt["reference"], "contact": "+84 912-345-678"}
    )
    assert response.status_code == 202
    [event] = await intake.published(TrackingLinkRequested, 1)
    assert event.channel == "phone"
    answer = await lookup(intake, pid, recover=True)
    assert answer["wants_updates"] is False
    assert answer.get("tracking_url") is None
    assert answer["recovery"]["phone"] == "0912 345 678"
    assert "email" not in answer["recovery"]


async def test_recovery_of_an_erased_contact_sends_nothing(intake: Intake) -> None:
    receipt = await intake.submit()
    erased = await intake.client.post(f"/api/v1/track/{receipt['tracking_token']}/erase")
    assert erased.status_code == 200
    response = await intake.client.post(
        RECOVER, json={"reference": receipt["reference"], "contact": "a@example.vn"}
    )
    assert response.status_code == 202
    await intake.published(PetitionSubmitted, 1)
    assert await intake.events(TrackingLinkRequested) == []
    async with intake.runtime.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(link_recoveries)) == 0


async def test_recovery_is_throttled_per_reference_whoever_asks(intake: Intake) -> None:
    receipt = await intake.submit()
    asks = [
        await client_at(intake, f"127.0.0.{n}").post(
            RECOVER, json={"reference": receipt["reference"], "contact": f"x{n}@example.vn"}
        )
        for n in range(2, 7)
    ]
    assert [a.status_code for a in asks] == [202, 202, 202, 429, 429]
    assert int(asks[3].headers["Retry-After"]) > 0
    assert asks[3].json()["type"] == "urn:petitions:problem:rate-limited"
    intake.clock.advance(timedelta(hours=1, seconds=1))
    again = await intake.client.post(
        RECOVER, json={"reference": receipt["reference"], "contact": "a@example.vn"}
    )
    assert again.status_code == 202


async def test_recovery_page_is_linked_and_answers_alike(intake: Intake) -> None:
    form = await intake.client.get("/")
    assert 'href="/track/recover"' in form.text
    lost = await intake.client.get("/track/nope")
    assert 'href="/track/recover"' in lost.text
    page = await intake.client.get("/track/recover")
    assert page.status_code == 200
    assert "Nhận lại liên kết theo dõi" in page.text
    receipt = await intake.submit()
    sent = await intake.client.post(
        "/track/recover", data={"reference": receipt["reference"], "contact": "a@example.vn"}
    )
    other = await intake.client.post(
        "/track/recover", data={"reference": receipt["reference"], "contact": "z@example.vn"}
    )
    assert sent.status_code == other.status_code == 202
    assert "trong ít phút" in sent.text
    assert sent.text == other.text
    await intake.published(TrackingLinkRequested, 1)


# The public rate limit


async def test_api_submissions_beyond_the_limit_are_refused_per_address_and_per_contact(
    nats_url: str, database_url: str
) -> None:
    async with open_intake(nats_url, database_url, public_rate_limit="3/minute") as intake:
        for n in range(3):
            await intake.submit(email=f"r{n}@example.vn", phone=None)
        refused = await intake.client.post(
            "/api/v1/petitions", json={**VALID, "email": "new@example.vn", "phone": None}
        )
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        problem = refused.json()
        assert problem["type"] == "urn:petitions:problem:rate-limited"
        assert "thử lại sau 1 phút" in problem["detail"]

        # The same contact from other addresses counts too; another contact does not.
        async with client_at(intake, "127.0.0.9") as elsewhere:
            for _ in range(3):
                ok = await elsewhere.post(
                    "/api/v1/petitions", json={**VALID, "email": "same@example.vn", "phone": None}
                )
                assert ok.status_code == 201, ok.text
            spelled_otherwise = await elsewhere.post(
                "/api/v1/petitions", json={**VALID, "email": "SAME@example.vn", "phone": None}
            )
            assert spelled_otherwise.status_code == 429
        assert await count(intake) == 6

        # Nothing but hashes is kept.
        async with intake.runtime.engine.connect() as conn:
            keys = (await conn.execute(select(public_hits.c.key))).scalars().all()
        assert keys
        assert all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)

        intake.clock.advance(timedelta(minutes=1, seconds=1))
        await intake.submit(email="later@example.vn", phone=None)


async def test_form_open311_and_resident_actions_are_limited_too(
    nats_url: str, database_url: str
) -> None:
    from tests.intake.test_open311 import CREATE, issue_key

    async with open_intake(nats_url, database_url, public_rate_limit="2/minute") as intake:
        async with client_at(intake, "127.0.0.20") as first:
            receipt = (await first.post("/api/v1/petitions", json=VALID)).json()
            token = receipt["tracking_token"]
        for _ in range(2):
            done = await intake.client.post(f"/api/v1/track/{token}/stop-updates")
            assert done.status_code == 200
        third = await intake.client.post(f"/api/v1/track/{token}/stop-updates")
        assert third.status_code == 429
        assert "Retry-After" in third.headers
        page = await client_at(intake, "127.0.0.21").post(f"/track/{token}/stop-updates")
        assert page.status_code == 429
        assert "Retry-After" in page.headers
        assert "quá nhiều yêu cầu" in page.text

        async with client_at(intake, "127.0.0.30") as resident:
            for n in range(2):
                sent = await resident.post("/", data={**FORM, "email": f"f{n}@example.vn"})
                assert sent.status_code == 303
            typed = {**FORM, "title": "Cống nghẹt <lần 3>", "email": "f9@example.vn"}
            kept = await resident.post("/", data=typed)
        assert kept.status_code == 429
        assert "Retry-After" in kept.headers
        assert "quá nhiều yêu cầu" in kept.text
        assert 'value="Cống nghẹt &lt;lần 3&gt;"' in kept.text

        key = (await issue_key(intake))["key"]
        async with client_at(intake, "127.0.0.40") as app_client:
            created = [
                await app_client.post(
                    "/open311/v2/requests.json",
                    data={**CREATE, "api_key": key, "email": f"o{n}@example.vn"},
                )
                for n in range(3)
            ]
        assert [c.status_code for c in created][:2] == [201, 201], created[0].text
        assert created[2].status_code == 429
        assert "Retry-After" in created[2].headers


# Robots on the form


async def test_a_filled_honeypot_is_told_it_went_and_nothing_is_stored(intake: Intake) -> None:
    form = await intake.client.get("/")
    assert 'name="website"' in form.text
    assert 'tabindex="-1"' in form.text
    response = await intake.client.post("/", data={**FORM, "website": "http://spam.example"})
    assert response.status_code == 200
    assert "Cảm ơn bạn" in response.text
    assert await count(intake) == 0
    assert await intake.events(PetitionSubmitted) == []


async def test_a_form_sent_too_fast_comes_back_with_what_was_typed(
    nats_url: str, database_url: str
) -> None:
    async with open_intake(nats_url, database_url, form_min_fill_s=3) as intake:
        shown = await intake.client.get("/")
        started = re.search(r'name="form_started" value="([^"]+)"', shown.text)
        assert started is not None
        typed = {**FORM, "title": "Rác <đầu hẻm>", "form_started": started.group(1)}
        fast = await intake.client.post("/", data=typed)
        assert fast.status_code == 422
        assert "gửi quá nhanh" in fast.text
        assert 'value="Rác &lt;đầu hẻm&gt;"' in fast.text
        assert f'value="{started.group(1)}"' in fast.text  # the first showing still counts
        forged = await intake.client.post("/", data={**typed, "form_started": "1.abc"})
        assert forged.status_code == 422
        # Not ASCII: refused like any forged stamp, not a 500.
        odd = await intake.client.post("/", data={**typed, "form_started": "1.é"})
        assert odd.status_code == 422
        assert await count(intake) == 0
        # A stamp kept for days is a robot's reusing one: shown again.
        stale = {**typed, "form_started": started.group(1)}
        intake.clock.advance(timedelta(days=3))
        assert (await intake.client.post("/", data=stale)).status_code == 422
        intake.clock.advance(timedelta(days=-3))
        assert await count(intake) == 0

        intake.clock.advance(timedelta(seconds=4))
        later = await intake.client.post("/", data=typed)
        assert later.status_code == 303
        assert await count(intake) == 1
        english = await intake.client.post("/?lang=en", data={**FORM})
        assert "sent too quickly" in english.text


# Not a petition


async def test_complaints_and_denunciations_are_sent_elsewhere_and_nothing_is_stored(
    intake: Intake,
) -> None:
    form = await intake.client.get("/")
    assert 'value="complaint"' in form.text
    assert 'value="denunciation"' in form.text
    complaint = await intake.client.post("/", data={**FORM, "kind": "complaint"})
    assert complaint.status_code == 200
    assert "Luật Khiếu nại năm 2011" in complaint.text
    assert "Law on Complaints (2011)" in complaint.text
    assert complaint.text.index("Luật Khiếu nại") < complaint.text.index("Law on Complaints")
    denunciation = await intake.client.post("/", data={"kind": "denunciation"})
    assert "Luật Tố cáo năm 2018" in denunciation.text

    refused = await intake.client.post("/api/v1/petitions", json={**VALID, "kind": "complaint"})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == "urn:petitions:problem:not-a-petition"
    assert problem["kind"] == "complaint"
    assert "Luật Khiếu nại" in problem["guidance"]["vi"]
    assert "Law on Complaints" in problem["guidance"]["en"]
    # Nothing else in the body is looked at: it is not a petition.
    only_kind = await intake.client.post("/api/v1/petitions", json={"kind": "denunciation"})
    assert only_kind.status_code == 422
    assert only_kind.json()["guidance"]["en"].startswith("This is a denunciation")
    assert await count(intake) == 0
    assert await intake.events(PetitionSubmitted) == []

    await intake.submit(kind="petition")
    assert await count(intake) == 1


# Location


async def test_a_point_is_validated_stored_carried_and_linked_to_a_map(intake: Intake) -> None:
    receipt = await intake.submit(latitude=10.3700001, longitude=105.43)
    [event] = await intake.published(PetitionSubmitted, 1)
    assert (event.latitude, event.longitude) == (10.37, 105.43)
    view = await intake.track(receipt["tracking_token"])
    assert view["latitude"] == 10.37
    assert view["map_url"] == (
        "https://www.openstreetmap.org/?mlat=10.370000&mlon=105.430000#map=18/10.370000/105.430000"
    )
    page = await intake.client.get(f"/track/{receipt['tracking_token']}")
    assert 'id="map-link"' in page.text

    for wrong, field in (
        ({"latitude": 91, "longitude": 105}, "latitude"),
        ({"latitude": 10, "longitude": -181}, "longitude"),
        ({"latitude": 10}, "longitude"),
    ):
        refused = await intake.client.post("/api/v1/petitions", json={**VALID, **wrong})
        assert refused.status_code == 422, wrong
        assert field in {e["field"] for e in refused.json()["errors"]}
    typed = {**FORM, "latitude": "10,5", "longitude": "abc"}
    kept = await intake.client.post("/", data=typed)
    assert kept.status_code == 422
    assert 'id="longitude-error"' in kept.text
    assert 'value="10,5"' in kept.text
    sent = await intake.client.post("/", data={**FORM, "latitude": "10,5", "longitude": "105.5"})
    assert sent.status_code == 303
    await intake.published(PetitionSubmitted, 2)
    assert (await intake.events(PetitionSubmitted))[1].latitude == 10.5


async def test_use_my_location_is_a_same_origin_script_the_form_works_without(
    intake: Intake,
) -> None:
    form = await intake.client.get("/")
    assert '<script src="/static/locate.js" defer></script>' in form.text
    assert form.text.count("<script") == 1
    assert 'id="use-location" hidden' in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]
    assert "default-src 'none'" in form.headers["content-security-policy"]
    script = await intake.client.get("/static/locate.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "getCurrentPosition" in script.text
    tracking = await intake.client.get("/track/recover")
    assert "script-src" not in tracking.headers["content-security-policy"]


async def test_an_open311_point_travels_with_the_petition(intake: Intake) -> None:
    from tests.intake.test_open311 import CREATE, issue_key

    key = (await issue_key(intake))["key"]
    created = await intake.client.post("/open311/v2/requests.json", data={**CREATE, "api_key": key})
    assert created.status_code == 201, created.text
    [event] = await intake.published(PetitionSubmitted, 1)
    assert (event.latitude, event.longitude) == (10.37, 105.43)


def test_a_redaction_clears_the_point() -> None:
    import uuid

    from shared.events import redacted

    event = PetitionSubmitted.new(
        producer="intake",
        petition_id=uuid.uuid4(),
        reference="PA-0000-0001",
        unit_id="u",
        category_id="c",
        title="t",
        description="d",
        latitude=10.0,
        longitude=105.0,
    )
    clean = redacted(event)
    assert clean.latitude is None
    assert clean.longitude is None
