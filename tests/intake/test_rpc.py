"""notify's contact look-up over core NATS request/reply."""

from __future__ import annotations

import json
import uuid

from shared.streams import RPC_CONTACT_LOOKUP
from tests.intake.conftest import PUBLIC_URL, VALID, Intake


async def ask(intake: Intake, payload: bytes) -> dict[str, object]:
    reply = await intake.nc.request(RPC_CONTACT_LOOKUP, payload, timeout=5)
    answer: dict[str, object] = json.loads(reply.data)
    return answer


async def test_contact_lookup_answers_with_the_residents_contact(intake: Intake) -> None:
    body = await intake.submit(language="en")

    answer = await ask(intake, json.dumps({"petition_id": body["petition_id"]}).encode())

    assert answer == {
        "found": True,
        "name": VALID["name"],
        "email": VALID["email"],
        "phone": VALID["phone"],
        "language": "en",
        "wants_updates": True,
        "tracking_url": f"{PUBLIC_URL}/track/{body['tracking_token']}",
    }


async def test_contact_lookup_for_unknown_or_malformed_requests_finds_nothing(
    intake: Intake,
) -> None:
    unknown = json.dumps({"petition_id": str(uuid.uuid4())}).encode()
    for payload in (unknown, b"not json", b"{}", b'{"petition_id": "x"}', b"[]"):
        assert await ask(intake, payload) == {"found": False}, payload
