"""The resident's view follows routing's events, once each, whatever order they arrive in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseNoteAdded,
    CaseQuestionAsked,
    CaseReopened,
    CaseResolved,
    CaseResumed,
    FeedbackGiven,
    PetitionSubmitted,
)
from shared.streams import PETITIONS_STREAM
from tests.intake.conftest import Intake
from tests.support import eventually


def case_fields(petition_id: str, at: datetime) -> dict[str, Any]:
    return {
        "producer": "routing",
        "petition_id": uuid.UUID(petition_id),
        "occurred_at": at,
        "case_id": uuid.uuid5(uuid.NAMESPACE_URL, petition_id),
    }


def assigned(petition_id: str, at: datetime, *, rung: int = 0) -> CaseAssigned:
    return CaseAssigned.new(
        **case_fields(petition_id, at),
        rung=rung,
        unit_id="my-thoi-thoi-an-a-to-2",
        member_id="m1",
        member_username="member1",
        member_name="Trần Thị B",
        due_at=at + timedelta(days=5),
    )


async def wait_for(intake: Intake, token: str, status: str, timeline_len: int) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        view = await intake.track(token)
        ok = view["status"] == status and len(view["timeline"]) == timeline_len
        return view if ok else {}

    return await eventually(check, what=f"status {status} with {timeline_len} timeline lines")


async def test_tracking_view_follows_the_case_through_resolution_and_feedback(
    intake: Intake,
) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    t0 = datetime.now(UTC) + timedelta(seconds=1)

    first = assigned(pid, t0)
    await intake.publish(first)
    view = await wait_for(intake, token, "assigned", 2)
    assert view["due_at"] == (t0 + timedelta(days=5)).isoformat()
    assert view["rung"] == 0
    assert "Trần Thị B" not in str(view)

    await intake.publish(CaseAccepted.new(**case_fields(pid, t0 + timedelta(1)), member_id="m1"))
    await wait_for(intake, token, "in_progress", 3)

    # An internal note is not for the resident.
    note = CaseNoteAdded.new(**case_fields(pid, t0 + timedelta(2)), member_id="m1", note="nội bộ")
    await intake.publish(note)

    resolved = CaseResolved.new(
        **case_fields(pid, t0 + timedelta(3)), member_id="m1", explanation="Đã thay bóng đèn."
    )
    await intake.publish(resolved)
    view = await wait_for(intake, token, "resolved", 4)
    assert view["timeline"][-1]["detail"] == "Đã thay bóng đèn."
    assert view["can_give_feedback"] is True
    assert view["due_at"] is None
    assert "nội bộ" not in str(view)

    feedback = {"resolved": False, "comment": "Đèn vẫn chập chờn"}
    response = await intake.client.post(f"/api/v1/track/{token}/feedback", json=feedback)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "feedback_given"

    again = await intake.client.post(f"/api/v1/track/{token}/feedback", json=feedback)
    assert again.status_code == 409
    assert again.json()["current_status"] == "feedback_given"

    async def feedback_published() -> Any:
        try:
            return await intake.js.get_last_msg(PETITIONS_STREAM, FeedbackGiven.subject)
        except Exception:
            return None

    msg = await eventually(feedback_published, what="FeedbackGiven on the stream")
    given = FeedbackGiven.model_validate_json(msg.data)
    assert given.resolved is False
    assert given.causation_id == resolved.event_id
    submitted = await intake.js.get_last_msg(PETITIONS_STREAM, PetitionSubmitted.subject)
    assert (
        given.correlation_id
        == PetitionSubmitted.model_validate_json(submitted.data or b"").event_id
    )
    assert msg.headers is not None
    assert msg.headers["Nats-Msg-Id"] == str(given.event_id)

    reopened = CaseReopened.new(**case_fields(pid, t0 + timedelta(4)), from_rung=0)
    await intake.publish(reopened)
    await wait_for(intake, token, "reopened", 6)
    escalated = CaseEscalated.new(
        **case_fields(pid, t0 + timedelta(5)), from_rung=0, to_rung=1, reason="not_resolved"
    )
    # Routing stamps the escalation and the next assignment with the same instant; whichever
    # consumer runs first, the resident ends up seeing the assignment.
    await intake.publish(assigned(pid, t0 + timedelta(5), rung=1))
    await intake.publish(escalated)
    view = await wait_for(intake, token, "assigned", 8)
    assert view["rung"] == 1

    closed = CaseClosed.new(**case_fields(pid, t0 + timedelta(6)), reason="resident_confirmed")
    await intake.publish(closed)
    await wait_for(intake, token, "closed", 9)


async def test_feedback_before_resolution_is_a_conflict(intake: Intake) -> None:
    body = await intake.submit()
    response = await intake.client.post(
        f"/api/v1/track/{body['tracking_token']}/feedback", json={"resolved": True}
    )
    assert response.status_code == 409
    assert response.json()["current_status"] == "submitted"
    unknown = await intake.client.post("/api/v1/track/nope/feedback", json={"resolved": True})
    assert unknown.status_code == 404
    bad = await intake.client.post(
        f"/api/v1/track/{body['tracking_token']}/feedback", json={"resolved": "yes"}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "resolved"


async def test_the_same_event_delivered_twice_changes_nothing(intake: Intake) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    event = assigned(pid, datetime.now(UTC) + timedelta(seconds=1))

    await intake.publish(event)
    first = await wait_for(intake, token, "assigned", 2)
    # A different Nats-Msg-Id gets it past JetStream's duplicate window: only the inbox stops it.
    await intake.publish(event, msg_id=str(uuid.uuid4()))

    async def seen_twice() -> bool:
        return intake.runtime.consumers.stats.duplicates >= 1

    await eventually(seen_twice, what="the duplicate delivery was handled")
    assert await intake.track(token) == first


async def test_an_older_event_arriving_late_only_adds_history(intake: Intake) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    t0 = datetime.now(UTC) + timedelta(seconds=1)

    await intake.publish(CaseAccepted.new(**case_fields(pid, t0 + timedelta(1)), member_id="m1"))
    await wait_for(intake, token, "in_progress", 2)
    await intake.publish(assigned(pid, t0))
    view = await wait_for(intake, token, "in_progress", 3)

    assert [t["kind"] for t in view["timeline"]] == ["submitted", "assigned", "in_progress"]


async def test_events_for_unknown_petitions_are_ignored(intake: Intake) -> None:
    stray = assigned(str(uuid.uuid4()), datetime.now(UTC))
    await intake.publish(stray)

    async def handled() -> bool:
        return intake.runtime.consumers.stats.handled >= 1

    await eventually(handled, what="the stray event was consumed")
    assert intake.runtime.consumers.stats.dead_lettered == 0


async def test_a_question_that_arrives_after_its_resumption_does_not_reopen_the_form(
    intake: Intake,
) -> None:
    """The one pair a resident would notice: the question was held up (retried) and the case
    resumed meanwhile. Intake never waits for an earlier event (it made the petition, so none
    is missing): each routing event adds its line, and moves the status only if it is newer."""
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    question = CaseQuestionAsked.new(
        **case_fields(pid, t0), member_id="m1", question_id=uuid.uuid4(), question="Cột số mấy?"
    )
    resumed = CaseResumed.new(**case_fields(pid, t0 + timedelta(seconds=1)), reason="max_wait")
    await intake.publish(resumed)
    await wait_for(intake, token, "in_progress", 2)
    await intake.publish(question)
    view = await wait_for(intake, token, "in_progress", 3)
    assert view["question"] is None
    assert view["can_answer"] is False
