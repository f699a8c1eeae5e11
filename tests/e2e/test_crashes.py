"""Delivery under crashes: processes killed with SIGKILL at awkward moments lose nothing and
do nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator

import nats
import pytest

from services.stack import Stack
from shared.streams import PETITIONS_STREAM
from tests.e2e.client import StackClient
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[StackClient]:
    c = StackClient(stack)
    yield c
    await c.aclose()


async def assignments_on_stream(stack: Stack) -> Counter[str]:
    """How many distinct `assigned` events the stream holds, per petition."""
    nc = await nats.connect(stack.nats_url, **stack.nats_connect_options())
    try:
        js = nc.jetstream()
        info = await js.stream_info(PETITIONS_STREAM)
        counts: Counter[str] = Counter()
        if not info.state.messages:
            return counts
        sub = await js.subscribe(
            "petitions.assigned.v1", stream=PETITIONS_STREAM, ordered_consumer=True
        )
        seen: set[str] = set()
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except TimeoutError:
                break
            event = json.loads(msg.data)
            assert event["event_id"] not in seen, "the stream holds one event twice"
            seen.add(event["event_id"])
            counts[event["petition_id"]] += 1
        await sub.unsubscribe()
        return counts
    finally:
        await nc.close()


async def test_routing_killed_mid_flow_assigns_every_petition_exactly_once(
    stack: Stack, client: StackClient
) -> None:
    limit = asyncio.Semaphore(20)

    async def submit(i: int) -> str:
        async with limit:
            body = await client.submit(title=f"Phản ánh số {i}")
            return str(body["petition_id"])

    submitting = asyncio.gather(*(submit(i) for i in range(200)))

    async def some_assigned() -> bool:
        return sum((await assignments_on_stream(stack)).values()) >= 5

    await eventually(some_assigned, timeout=60, what="routing assigning")
    stack.kill("routing")
    petition_ids = await submitting
    stack.start_service("routing")
    stack.wait_ready(services=("routing",), timeout=60)

    async def all_assigned() -> Counter[str] | None:
        counts = await assignments_on_stream(stack)
        return counts if set(counts) >= set(petition_ids) else None

    counts = await eventually(
        all_assigned, timeout=120, interval=1.0, what="every petition assigned"
    )
    assert {pid: counts[pid] for pid in petition_ids} == dict.fromkeys(petition_ids, 1)

    cases = await client.as_staff(
        "admin", "GET", "routing", "/api/v1/cases", params={"scope": "unit", "limit": 500}
    )
    by_petition = Counter(c["petition_id"] for c in cases.json())
    assert len(by_petition) == 200
    assert set(by_petition.values()) == {1}


async def test_acknowledged_petition_survives_intake_killed_before_relay_published(
    stack: Stack, client: StackClient
) -> None:
    assert stack.nats is not None
    stack.nats.stop()  # the relay cannot publish: the event waits in intake's outbox
    submitted = await client.submit()
    stack.kill("intake")
    stack.nats.start()
    stack.start_service("intake")
    stack.wait_ready(timeout=90)
    case = await client.wait_case(submitted["petition_id"], status="assigned", timeout=60)
    assert case["reference"] == submitted["reference"]
    await client.wait_status(submitted["tracking_token"], "assigned")
