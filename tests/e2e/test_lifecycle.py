"""A petition's whole life across the three services, as separate processes on real parts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from services.stack import Stack
from tests.e2e.client import DEMO_PETITION, StackClient, wait_mail

pytestmark = pytest.mark.e2e


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[StackClient]:
    c = StackClient(stack)
    yield c
    await c.aclose()


async def test_submitted_assigned_accepted_resolved_confirmed_closed(
    stack: Stack, client: StackClient
) -> None:
    submitted = await client.submit()
    petition_id = submitted["petition_id"]
    assert submitted["status"] == "submitted"

    case = await client.wait_case(petition_id, status="assigned", rung=0)
    member = case["holder_username"]
    assert member
    await client.wait_status(submitted["tracking_token"], "assigned")
    # The member is told by email.
    await wait_mail(
        stack.var_dir, submitted["reference"], "Phản ánh mới giao cho bạn", "@example.org"
    )

    accepted = await client.as_staff(
        member, "POST", "routing", f"/api/v1/cases/{case['id']}/accept"
    )
    assert accepted.status_code == 200, accepted.text
    explanation = "Đã thay bóng đèn mới ngày 28/11. / The lamp was replaced."
    resolved = await client.as_staff(
        member,
        "POST",
        "routing",
        f"/api/v1/cases/{case['id']}/resolve",
        json={"explanation": explanation},
    )
    assert resolved.status_code == 200, resolved.text

    # The resident gets an email with the link to confirm; the tracking page shows the resolution.
    track_prefix = submitted["tracking_url"].removesuffix(submitted["tracking_token"])
    mail = await wait_mail(
        stack.var_dir, "Đã được giải quyết", DEMO_PETITION["email"], track_prefix
    )
    view = await client.wait_status(submitted["tracking_token"], "resolved")
    assert explanation in str(view)
    # The emailed link carries a token of its own (intake keeps only hashes), to the same page.
    found = re.search(re.escape(track_prefix) + r"([A-Za-z0-9_-]{20,})", mail)
    assert found, mail
    assert found.group(1) != submitted["tracking_token"]
    emailed = await client.wait_status(found.group(1), "resolved")
    assert emailed["petition_id"] == petition_id

    feedback = await client.http.post(
        client.url("intake", f"/api/v1/track/{submitted['tracking_token']}/feedback"),
        json={"resolved": True, "comment": "Cảm ơn / Thank you"},
    )
    assert feedback.status_code in (200, 202), feedback.text
    await client.wait_case(petition_id, status="closed")
    await client.wait_status(submitted["tracking_token"], "closed")

    # The timeline in notify holds every step, in order, for staff only.
    path = f"/api/v1/petitions/{petition_id}/timeline"
    assert (await client.http.get(client.url("notify", path))).status_code == 401
    timeline = await client.as_staff("admin", "GET", "notify", path)
    assert timeline.status_code == 200, timeline.text
    kinds = [e["subject"] for e in timeline.json()["events"]]
    # Every service documents its API and lists parked messages for administrators.
    for service in ("intake", "routing", "notify"):
        spec = await client.http.get(client.url(service, "/openapi.json"))
        assert spec.status_code == 200, (service, spec.text)
        docs = await client.http.get(client.url(service, "/docs"))
        assert docs.status_code == 200
        assert "/docs-assets/swagger-ui-bundle.js" in docs.text  # no CDN
        assert (
            await client.http.get(client.url(service, "/docs-assets/swagger-ui-bundle.js"))
        ).status_code == 200
        parked = await client.as_staff("admin", "GET", service, "/api/v1/admin/dead-letters")
        assert parked.status_code == 200, (service, parked.text)
        assert parked.json() == []
    assert kinds == [
        "petitions.submitted.v1",
        "petitions.assigned.v1",
        "petitions.accepted.v1",
        "petitions.resolved.v1",
        "petitions.feedback_given.v1",
        "petitions.closed.v1",
    ]


async def test_not_resolved_reopens_one_rung_up(stack: Stack, client: StackClient) -> None:
    submitted = await client.submit()
    petition_id = submitted["petition_id"]
    case = await client.wait_case(petition_id, status="assigned", rung=0)
    member = case["holder_username"]
    for action, body in (("accept", None), ("resolve", {"explanation": "Đã xử lý / Done"})):
        response = await client.as_staff(
            member, "POST", "routing", f"/api/v1/cases/{case['id']}/{action}", json=body
        )
        assert response.status_code == 200, response.text
    await client.wait_status(submitted["tracking_token"], "resolved")

    feedback = await client.http.post(
        client.url("intake", f"/api/v1/track/{submitted['tracking_token']}/feedback"),
        json={"resolved": False, "comment": "Đèn vẫn tắt / Still dark"},
    )
    assert feedback.status_code in (200, 202), feedback.text
    reopened = await client.wait_case(petition_id, status="assigned", rung=1)
    assert reopened["holder_username"] == "bithu.mykhanh2"
    assert reopened["holder_username"] != member
    # Feedback a second time for the same resolution is refused, and changes nothing.
    again = await client.http.post(
        client.url("intake", f"/api/v1/track/{submitted['tracking_token']}/feedback"),
        json={"resolved": True},
    )
    assert again.status_code == 409
