"""The whole ladder over HTTP, with the three services as separate processes: a petition is
submitted to intake, nobody acts, the routing service's clock is moved past each deadline (a
clock file the running services read), and the case climbs to the hamlet's leader, to the
commune's leadership, and stays there overdue at the top."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.stack import UNTHROTTLED_ENV, Stack, file_sink
from shared.embedded_nats import free_port
from tests.e2e.client import StackClient

pytestmark = pytest.mark.e2e


@pytest.fixture
def clock_file(tmp_path: Path) -> Path:
    path = tmp_path / "clock-offset"
    path.write_text("0")
    return path


@pytest.fixture
def stack(tmp_path: Path, clock_file: Path) -> Iterator[Stack]:
    s = Stack(
        var_dir=tmp_path / "var",
        ports={"intake": free_port(), "routing": free_port(), "notify": free_port()},
        nats_port=free_port(),
        env={
            "PETITIONS_CLOCK_FILE": str(clock_file),
            "PETITIONS_ROUTING_SWEEP_INTERVAL_S": "0.2",
            "PETITIONS_LOG_FORMAT": "json",
            **UNTHROTTLED_ENV,
        },
        output=file_sink(tmp_path / "stack.log"),
        stop_grace=15,
    )
    s.start()
    try:
        s.wait_ready(timeout=90)
        yield s
    finally:
        s.stop()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[StackClient]:
    c = StackClient(stack)
    yield c
    await c.aclose()


def move_clock_past(clock_file: Path, moment: str) -> None:
    """Set the services' clock a minute past `moment` (an ISO time in their clock)."""
    target = datetime.fromisoformat(moment) + timedelta(minutes=1)
    clock_file.write_text(str((target - datetime.now(UTC)).total_seconds()))


async def test_submitted_then_leader_then_commune_then_overdue_at_the_top(
    client: StackClient, clock_file: Path
) -> None:
    submitted = await client.submit()
    petition_id = submitted["petition_id"]
    case: dict[str, Any] = await client.wait_case(petition_id, status="assigned", rung=0)

    move_clock_past(clock_file, case["ack_due_at"])
    case = await client.wait_case(petition_id, rung=1, holder_username="bithu.mykhanh2")
    assert case["flag"] == "overdue"

    move_clock_past(clock_file, case["ack_due_at"])
    case = await client.wait_case(petition_id, rung=2, holder_username="danguy.myhoahung")

    move_clock_past(clock_file, case["due_at"])
    case = await client.wait_case(petition_id, rung=2, flag="overdue_top")
    assert case["status"] == "assigned"

    detail = await client.as_staff("admin", "GET", "routing", f"/api/v1/cases/{case['id']}")
    kinds = [h["kind"] for h in detail.json()["history"]]
    assert kinds == [
        "submitted",
        "assigned",
        "escalated",
        "assigned",
        "escalated",
        "assigned",
        "overdue_at_top",
    ]
    reasons = [
        (h["detail"]["from_rung"], h["detail"]["to_rung"], h["detail"]["reason"])
        for h in detail.json()["history"]
        if h["kind"] == "escalated"
    ]
    assert reasons == [(0, 1, "deadline_passed"), (1, 2, "deadline_passed")]
    view = await client.tracking(submitted["tracking_token"])
    assert view["status"] != "submitted"
