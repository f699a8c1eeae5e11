"""Erasure reaches every copy: the resident erases their contact in intake, and routing and
notify remove what the resident wrote from their own copies of the petition, on the three
services as separate processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.stack import Stack
from shared.events import REDACTED_TEXT
from tests.e2e.client import DEMO_PETITION, StackClient
from tests.support import eventually

pytestmark = pytest.mark.e2e

SAID = "Đèn vẫn tắt, nhà tôi số 12 ngay đầu hẻm / Still dark, I live at number 12"


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[StackClient]:
    c = StackClient(stack)
    yield c
    await c.aclose()


async def test_erasing_a_resident_redacts_their_text_in_routing_and_notify(
    stack: Stack, client: StackClient
) -> None:
    submitted = await client.submit()
    petition_id, token = submitted["petition_id"], submitted["tracking_token"]
    case = await client.wait_case(petition_id, status="assigned", rung=0)
    member = case["holder_username"]
    for action, body in (("accept", None), ("resolve", {"explanation": "Đã xử lý / Done"})):
        response = await client.as_staff(
            member, "POST", "routing", f"/api/v1/cases/{case['id']}/{action}", json=body
        )
        assert response.status_code == 200, response.text
    await client.wait_status(token, "resolved")
    feedback = await client.http.post(
        client.url("intake", f"/api/v1/track/{token}/feedback"),
        json={"resolved": False, "comment": SAID},
    )
    assert feedback.status_code in (200, 202), feedback.text
    await client.wait_case(petition_id, status="assigned", rung=1)
    timeline_path = f"/api/v1/petitions/{petition_id}/timeline"

    async def reopened_in_notify() -> bool:
        timeline = await client.as_staff("admin", "GET", "notify", timeline_path)
        return SAID in timeline.text

    await eventually(reopened_in_notify, what="notify holds the resident's comment")
    before = await client.as_staff("admin", "GET", "routing", f"/api/v1/cases/{case['id']}")
    assert SAID in before.text
    assert DEMO_PETITION["description"] in before.text

    erased = await client.http.post(client.url("intake", f"/api/v1/track/{token}/erase"))
    assert erased.status_code == 200, erased.text
    resident_wrote = (DEMO_PETITION["title"], DEMO_PETITION["description"], SAID)

    async def redacted(service: str, path: str) -> str | None:
        response = await client.as_staff("admin", "GET", service, path)
        assert response.status_code == 200, response.text
        text = response.text
        if REDACTED_TEXT not in text or any(said in text for said in resident_wrote):
            return None
        return text

    case_text = await eventually(
        lambda: redacted("routing", f"/api/v1/cases/{case['id']}"), what="routing's case redacted"
    )
    assert DEMO_PETITION["location"] not in case_text
    timeline = await eventually(
        lambda: redacted("notify", timeline_path), what="notify's timeline redacted"
    )
    assert "petitions.redacted.v1" in timeline
    # The case goes on: routing still holds it, one rung up, with its history.
    [still] = await client.cases_of(petition_id)
    assert (still["status"], still["rung"]) == ("assigned", 1)
    for service in ("intake", "routing", "notify"):
        parked = await client.as_staff("admin", "GET", service, "/api/v1/admin/dead-letters")
        assert parked.json() == [], (service, parked.text)
