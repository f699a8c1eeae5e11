"""A double-clicked form or a retried API call creates one petition, not two."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from sqlalchemy import func, select

from services.intake.models import petitions
from shared.events import PetitionSubmitted
from tests.intake.conftest import VALID, Intake
from tests.intake.test_web import FORM


async def count(intake: Intake) -> int:
    async with intake.runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(petitions)) or 0)


async def form_key(intake: Intake) -> str:
    page = await intake.client.get("/")
    found = re.search(r'name="submission_key" value="([A-Za-z0-9_-]+)"', page.text)
    assert found, "the form carries a hidden submission key"
    return found.group(1)


async def test_a_double_clicked_form_lands_on_one_petition(intake: Intake) -> None:
    key = await form_key(intake)
    assert key != await form_key(intake), "a fresh key for each rendering"
    data = {**FORM, "submission_key": key}

    first, second = await asyncio.gather(
        intake.client.post("/", data=data), intake.client.post("/", data=data)
    )
    third = await intake.client.post("/", data=data)

    assert first.status_code == second.status_code == third.status_code == 303
    # Each lands on the same petition's tracking page (a replay with a fresh token of its own:
    # intake keeps only tokens' hashes).
    landed = {await landed_on(intake, r.headers["location"]) for r in (first, second, third)}
    assert len(landed) == 1
    assert await count(intake) == 1
    await intake.published(PetitionSubmitted, 1)

    # The same key with other content is a deliberate new petition (edited after going back).
    edited = await intake.client.post("/", data={**data, "title": "Rác ở cuối hẻm"})
    assert edited.status_code == 303
    assert await landed_on(intake, edited.headers["location"]) not in landed
    assert await count(intake) == 2


async def landed_on(intake: Intake, location: str) -> str:
    """The id of the petition a `/track/{token}?new=1` redirect opens."""
    token = location.removeprefix("/track/").split("?", 1)[0]
    return str((await intake.track(token))["petition_id"])


async def test_the_form_key_is_kept_when_the_form_comes_back_with_errors(intake: Intake) -> None:
    key = await form_key(intake)
    response = await intake.client.post("/", data={**FORM, "title": "", "submission_key": key})
    assert response.status_code == 422
    assert f'name="submission_key" value="{key}"' in response.text


async def test_an_api_retry_with_the_same_idempotency_key_returns_the_same_petition(
    intake: Intake,
) -> None:
    headers = {"Idempotency-Key": "5b0f6f7e-retry-1"}
    first, second = await asyncio.gather(
        intake.client.post("/api/v1/petitions", json=VALID, headers=headers),
        intake.client.post("/api/v1/petitions", json=VALID, headers=headers),
    )
    # Key order and spacing do not make another request.
    reordered = {k: VALID[k] for k in reversed(list(VALID))}
    third = await intake.client.post(
        "/api/v1/petitions", json={**reordered, "title": f"  {VALID['title']} "}, headers=headers
    )

    assert first.status_code == second.status_code == third.status_code == 201
    ids = {r.json()["petition_id"] for r in (first, second, third)}
    assert len(ids) == 1
    # Only hashes of tracking tokens are kept: a replay carries a fresh link to the same petition.
    for response in (first, second, third):
        assert (await intake.track(response.json()["tracking_token"]))["petition_id"] in ids
    assert third.headers["idempotent-replayed"] == "true"
    assert await count(intake) == 1
    await intake.published(PetitionSubmitted, 1)

    other = await intake.client.post(
        "/api/v1/petitions", json={**VALID, "title": "Khác"}, headers=headers
    )
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "urn:petitions:problem:idempotency-key-reused"

    # After 24 hours the key is free again.
    intake.clock.advance(timedelta(hours=24, minutes=1))
    later = await intake.client.post("/api/v1/petitions", json=VALID, headers=headers)
    assert later.status_code == 201
    assert later.json()["petition_id"] not in ids
    assert "idempotent-replayed" not in later.headers
    assert await count(intake) == 2


async def test_a_malformed_idempotency_key_is_refused(intake: Intake) -> None:
    for key in ("", "x" * 129, "has space"):
        response = await intake.client.post(
            "/api/v1/petitions", json=VALID, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 400, key
    assert await count(intake) == 0
