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


async def test_bulk_contact_lookup_answers_every_petition_asked_in_one_reply(
    intake: Intake,
) -> None:
    english = await intake.submit(language="en")
    quiet = await intake.submit(notify=False, email="", phone="", name="")
    erased = await intake.submit()
    gone = await intake.client.post(f"/track/{erased['tracking_token']}/erase", data={})
    assert gone.status_code == 303
    unknown = str(uuid.uuid4())
    asked = [english["petition_id"], quiet["petition_id"], erased["petition_id"], unknown]

    answer = await ask(intake, json.dumps({"petition_ids": asked}).encode())

    single = await ask(intake, json.dumps({"petition_id": english["petition_id"]}).encode())
    assert answer == {
        "contacts": {
            english["petition_id"]: single,
            quiet["petition_id"]: await ask(
                intake, json.dumps({"petition_id": quiet["petition_id"]}).encode()
            ),
            erased["petition_id"]: {"found": True, "erased": True, "wants_updates": False},
            unknown: {"found": False},
        }
    }
    assert single["email"] == VALID["email"]
    assert single["language"] == "en"
    assert await ask(intake, b'{"petition_ids": []}') == {"contacts": {}}


async def test_bulk_contact_lookup_refuses_malformed_lists(intake: Intake) -> None:
    too_many = json.dumps({"petition_ids": [str(uuid.uuid4()) for _ in range(501)]}).encode()
    for payload in (
        b'{"petition_ids": "x"}',
        b'{"petition_ids": ["not-a-uuid"]}',
        b'{"petition_ids": [null]}',
        too_many,
    ):
        assert await ask(intake, payload) == {"contacts": {}}, payload[:40]
