"""What a resident does from the tracking link: withdraw, answer the holder's question, ask to
escalate an overdue case, stop updates, erase their contact data; and what routing's rejections,
declines and top-rung notices look like to them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.intake.models import contacts, petitions
from shared.events import (
    CaseClosed,
    CaseDeclined,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseResumed,
    EscalationRequested,
    PetitionWithdrawn,
    ResidentAnswered,
)
from tests.intake.conftest import VALID, Intake
from tests.intake.test_status_view import assigned, case_fields, wait_for
from tests.support import eventually


def soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


async def post(intake: Intake, path: str, body: dict[str, Any] | None = None) -> Any:
    return (
        await intake.client.post(path, json=body)
        if body is not None
        else (await intake.client.post(path))
    )


async def test_withdrawing_ends_the_petition_and_tells_routing(intake: Intake) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]

    response = await post(intake, f"/api/v1/track/{token}/withdraw", {"reason": "Đã tự sửa"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn"

    [event] = await intake.published(PetitionWithdrawn, 1)
    assert str(event.petition_id) == pid
    assert event.reason == "Đã tự sửa"
    view = await intake.track(token)
    assert view["status"] == "withdrawn"
    assert view["can_withdraw"] is False

    for path, payload in (
        ("withdraw", {}),
        ("feedback", {"resolved": True}),
        ("answer", {"question_id": str(uuid.uuid4()), "answer": "x"}),
        ("escalate", {}),
    ):
        refused = await post(intake, f"/api/v1/track/{token}/{path}", payload)
        assert refused.status_code == 409, path

    # Routing closes its case; the resident still sees "withdrawn".
    closed = CaseClosed.new(**case_fields(pid, soon()), reason="withdrawn")
    await intake.publish(closed)
    view = await wait_for(intake, token, "withdrawn", 3)
    assert view["timeline"][-1]["kind"] == "closed"
    await intake.published(PetitionWithdrawn, 1)


async def test_withdrawing_from_the_page_asks_for_confirmation(intake: Intake) -> None:
    body = await intake.submit()
    token = body["tracking_token"]
    page = await intake.client.get(f"/track/{token}")
    assert f'href="/track/{token}/withdraw"' in page.text

    confirm = await intake.client.get(f"/track/{token}/withdraw")
    assert confirm.status_code == 200
    assert f'action="/track/{token}/withdraw"' in confirm.text
    assert "Có, rút phản ánh" in confirm.text
    assert (await intake.track(token))["status"] == "submitted"

    done = await intake.client.post(f"/track/{token}/withdraw", data={"reason": ""})
    assert done.status_code == 303
    after = await intake.client.get(done.headers["location"])
    assert "Bạn đã rút phản ánh." in after.text
    assert f'href="/track/{token}/withdraw"' not in after.text
    await intake.published(PetitionWithdrawn, 1)


async def test_a_question_is_answered_once_and_routing_resumes(intake: Intake) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    question = CaseQuestionAsked.new(
        **case_fields(pid, soon()),
        member_id="m1",
        question_id=uuid.uuid4(),
        question="Đèn ở cột số mấy?",
    )
    await intake.publish(question)
    view = await wait_for(intake, token, "waiting_for_resident", 2)
    assert view["question"] == {"id": str(question.question_id), "text": "Đèn ở cột số mấy?"}
    assert view["can_answer"] is True
    page = await intake.client.get(f"/track/{token}")
    assert "Đèn ở cột số mấy?" in page.text
    assert f'name="question_id" value="{question.question_id}"' in page.text

    wrong = await post(
        intake, f"/api/v1/track/{token}/answer", {"question_id": str(uuid.uuid4()), "answer": "x"}
    )
    assert wrong.status_code == 409
    empty = await post(
        intake, f"/api/v1/track/{token}/answer", {"question_id": str(question.question_id)}
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "answer"

    answer = {"question_id": str(question.question_id), "answer": "Cột số 7"}
    ok = await post(intake, f"/api/v1/track/{token}/answer", answer)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "in_progress"
    again = await post(intake, f"/api/v1/track/{token}/answer", answer)
    assert again.status_code == 409

    [answered] = await intake.published(ResidentAnswered, 1)
    assert answered.question_id == question.question_id
    assert answered.answer == "Cột số 7"
    assert answered.causation_id == question.event_id
    view = await intake.track(token)
    assert view["question"] is None
    [line] = [i for i in view["timeline"] if i["kind"] == "resident_answered"]
    assert line["detail"] == "Cột số 7"

    resumed = CaseResumed.new(
        **case_fields(pid, soon() + timedelta(seconds=1)),
        reason="answered",
        due_at=soon() + timedelta(days=3),
    )
    await intake.publish(resumed)
    view = await wait_for(intake, token, "in_progress", 4)
    assert view["due_at"] is not None

    # A second question, answered from the page.
    second = CaseQuestionAsked.new(
        **case_fields(pid, soon() + timedelta(seconds=2)),
        member_id="m1",
        question_id=uuid.uuid4(),
        question="Có ảnh không?",
    )
    await intake.publish(second)
    await wait_for(intake, token, "waiting_for_resident", 5)
    sent = await intake.client.post(
        f"/track/{token}/answer",
        data={"question_id": str(second.question_id), "answer": "Không có"},
    )
    assert sent.status_code == 303
    assert "Đã gửi câu trả lời của bạn." in (await intake.client.get(sent.headers["location"])).text
    await intake.published(ResidentAnswered, 2)


async def test_an_unanswered_question_closes_when_routing_stops_waiting(intake: Intake) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    question = CaseQuestionAsked.new(
        **case_fields(pid, soon()), member_id="m1", question_id=uuid.uuid4(), question="?"
    )
    await intake.publish(question)
    await wait_for(intake, token, "waiting_for_resident", 2)
    await intake.publish(
        CaseResumed.new(**case_fields(pid, soon() + timedelta(seconds=1)), reason="max_wait")
    )
    view = await wait_for(intake, token, "in_progress", 3)
    assert view["can_answer"] is False
    late = await post(
        intake,
        f"/api/v1/track/{token}/answer",
        {"question_id": str(question.question_id), "answer": "muộn"},
    )
    assert late.status_code == 409


async def test_escalation_is_asked_only_when_overdue_and_once_a_day(intake: Intake) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    await intake.publish(assigned(pid, soon()))  # due in five days
    await wait_for(intake, token, "assigned", 2)
    path = f"/api/v1/track/{token}/escalate"

    early = await post(intake, path, {})
    assert early.status_code == 409
    assert early.json()["type"] == "urn:petitions:problem:not-overdue"
    page = await intake.client.get(f"/track/{token}")
    assert "Yêu cầu chuyển lên cấp trên" not in page.text

    intake.clock.advance(timedelta(days=6))
    page = await intake.client.get(f"/track/{token}")
    assert "Yêu cầu chuyển lên cấp trên" in page.text
    first = await post(intake, path, {"comment": "Đã quá hạn lâu"})
    assert first.status_code == 200, first.text
    [event] = await intake.published(EscalationRequested, 1)
    assert event.comment == "Đã quá hạn lâu"
    assert str(event.petition_id) == pid

    intake.clock.advance(timedelta(hours=23))
    too_soon = await post(intake, path, {})
    assert too_soon.status_code == 429
    assert too_soon.headers["content-type"] == "application/problem+json"
    allowed_at = datetime.fromisoformat(too_soon.json()["allowed_at"])
    assert 0 < int(too_soon.headers["retry-after"]) <= 3600
    assert allowed_at == datetime.fromisoformat(first.json()["next_allowed_at"])
    page = await intake.client.get(f"/track/{token}")
    assert "Bạn có thể đề nghị chuyển lên cấp trên lần nữa sau" in page.text
    refused = await intake.client.post(f"/track/{token}/escalate", data={})
    assert refused.status_code == 409

    intake.clock.advance(timedelta(hours=1, seconds=1))
    from_page = await intake.client.post(f"/track/{token}/escalate", data={"comment": ""})
    assert from_page.status_code == 303
    await intake.published(EscalationRequested, 2)


async def test_rejection_declines_and_top_rung_notices_as_residents_see_them(
    intake: Intake,
) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    t = soon()
    await intake.publish(assigned(pid, t))
    await wait_for(intake, token, "assigned", 2)

    declined = CaseDeclined.new(
        **case_fields(pid, t + timedelta(seconds=1)),
        member_id="m1",
        reason_code="not_my_area",
        comment="Trần Thị B không phụ trách khu này",
    )
    await intake.publish(declined)
    view = await wait_for(intake, token, "assigned", 3)
    assert view["timeline"][-1]["kind"] == "declined"
    assert "Trần Thị B" not in str(view)
    assert "m1" not in str(view["timeline"])

    for day in ("2030-01-01", "2030-01-02"):
        await intake.publish(
            CaseOverdueAtTop.new(
                **case_fields(pid, t + timedelta(seconds=2)),
                rung=2,
                unit_id="my-thoi",
                member_ids=["m9"],
                due_at=t,
                day=day,
            )
        )

    async def both_seen() -> bool:
        return intake.runtime.consumers.stats.handled >= 4

    await eventually(both_seen, what="both overdue notices handled")
    view = await intake.track(token)
    assert [i["kind"] for i in view["timeline"]].count("overdue_at_top") == 1

    rejected = CaseRejected.new(
        **case_fields(pid, t + timedelta(seconds=3)),
        actor="lead1",
        reason="Không thuộc thẩm quyền của phường",
    )
    await intake.publish(rejected)
    view = await wait_for(intake, token, "rejected", 5)
    assert view["can_withdraw"] is False
    page = await intake.client.get(f"/track/{token}")
    assert "Lý do không tiếp nhận" in page.text
    assert "Không thuộc thẩm quyền của phường" in page.text
    assert "lead1" not in page.text


async def test_stop_updates_then_erase_and_the_contact_lookup_follows(
    intake: Intake, capsys: pytest.CaptureFixture[str]
) -> None:
    body = await intake.submit()
    pid, token = body["petition_id"], body["tracking_token"]
    assert (await intake.contact(pid))["wants_updates"] is True

    stopped = await intake.client.post(f"/track/{token}/stop-updates", data={})
    assert stopped.status_code == 303
    assert (await intake.contact(pid))["wants_updates"] is False
    again = await post(intake, f"/api/v1/track/{token}/stop-updates")
    assert again.json() == {"wants_updates": False, "changed": False}
    page = await intake.client.get(f"/track/{token}")
    assert "Ngừng nhận thông báo" not in page.text

    confirm = await intake.client.get(f"/track/{token}/erase")
    assert "Có, xoá thông tin liên hệ" in confirm.text
    erased = await intake.client.post(f"/track/{token}/erase", data={})
    assert erased.status_code == 303
    assert (
        "Thông tin liên hệ của bạn đã được xoá."
        in (await intake.client.get(erased.headers["location"])).text
    )

    assert await intake.contact(pid) == {"found": True, "erased": True, "wants_updates": False}
    async with intake.runtime.engine.connect() as conn:
        assert (await conn.execute(select(contacts))).first() is None
        petition = (await conn.execute(select(petitions))).mappings().one()
    assert petition["title"] == VALID["title"]
    assert petition["contact_erased_at"] is not None
    view = await intake.track(token)
    assert view["contact"] is None
    assert view["contact_erased"] is True
    repeat = await post(intake, f"/api/v1/track/{token}/erase")
    assert repeat.json() == {"contact_erased": True, "changed": False}

    logged = capsys.readouterr()
    for secret in (VALID["phone"], VALID["email"], VALID["name"]):
        assert str(secret) not in logged.out + logged.err


async def test_actions_on_an_unknown_link_are_404(intake: Intake) -> None:
    for path in ("withdraw", "escalate", "stop-updates", "erase"):
        response = await post(intake, f"/api/v1/track/nope/{path}")
        assert response.status_code == 404, path
    answer = await post(
        intake, "/api/v1/track/nope/answer", {"question_id": str(uuid.uuid4()), "answer": "x"}
    )
    assert answer.status_code == 404
