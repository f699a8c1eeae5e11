"""notify's contact look-up over core NATS request/reply."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select

from services.intake.models import contacts, petitions, public_timeline, tracking_tokens
from services.intake.petitions import hash_token
from shared.streams import RPC_CONTACT_LOOKUP
from tests.intake.conftest import PUBLIC_URL, VALID, Intake


async def ask(intake: Intake, payload: bytes) -> dict[str, object]:
    reply = await intake.nc.request(RPC_CONTACT_LOOKUP, payload, timeout=5)
    answer: dict[str, object] = json.loads(reply.data)
    return answer


async def test_contact_lookup_answers_with_the_residents_contact(intake: Intake) -> None:
    body = await intake.submit(language="en")

    answer = await ask(intake, json.dumps({"petition_id": body["petition_id"]}).encode())

    link = str(answer.pop("tracking_url"))
    assert answer == {
        "found": True,
        "name": VALID["name"],
        "email": VALID["email"],
        "phone": VALID["phone"],
        "language": "en",
        "wants_updates": True,
    }
    # A link minted for this message (the submission's token was never stored), which opens the
    # same petition as the submission's link, as does every link sent before it.
    assert link.startswith(f"{PUBLIC_URL}/track/")
    token = link.removeprefix(f"{PUBLIC_URL}/track/")
    assert token != body["tracking_token"]
    again = await ask(intake, json.dumps({"petition_id": body["petition_id"]}).encode())
    later = str(again["tracking_url"]).removeprefix(f"{PUBLIC_URL}/track/")
    assert later not in (token, body["tracking_token"])
    for each in (body["tracking_token"], token, later):
        assert (await intake.track(each))["petition_id"] == body["petition_id"]


async def test_intake_keeps_no_tracking_token_only_hashes(intake: Intake) -> None:
    body = await intake.submit()
    answer = await ask(intake, json.dumps({"petition_id": body["petition_id"]}).encode())
    minted = str(answer["tracking_url"]).rsplit("/", 1)[-1]

    async with intake.runtime.engine.connect() as conn:
        dump = []
        for table in (contacts, petitions, tracking_tokens, public_timeline):
            rows = (await conn.execute(select(table))).mappings().all()
            dump.extend(str(v) for row in rows for v in row.values())
        hashes = set((await conn.execute(select(tracking_tokens.c.token_hash))).scalars().all())
    text = "\n".join(dump)
    assert body["tracking_token"] not in text
    assert minted not in text
    assert hash_token(minted) in hashes


async def test_no_link_is_minted_for_a_resident_who_is_not_to_be_contacted(
    intake: Intake,
) -> None:
    quiet = await intake.submit(notify=False, email="", phone="", name="")
    answer = await ask(intake, json.dumps({"petition_id": quiet["petition_id"]}).encode())
    assert answer.get("tracking_url") is None
    async with intake.runtime.engine.connect() as conn:
        assert (await conn.scalar(select(func.count()).select_from(tracking_tokens))) == 0


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
    # Each answer carries a link of its own: compare the rest, and that both links open it.
    bulk_link = answer["contacts"][english["petition_id"]].pop("tracking_url")  # type: ignore[index]
    single_link = single.pop("tracking_url")
    for link in (bulk_link, single_link):
        opened = await intake.track(str(link).removeprefix(f"{PUBLIC_URL}/track/"))
        assert opened["petition_id"] == english["petition_id"]
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
