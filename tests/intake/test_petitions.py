"""Rules for petitions, without servers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.intake.catalog import CatalogError, load_catalog, parse_catalog
from services.intake.errors import InvalidSubmission
from services.intake.petitions import (
    REFERENCE_ALPHABET,
    escalation_check,
    hash_token,
    holder_label,
    mask_email,
    mask_phone,
    new_reference,
    new_tracking_token,
    parse_reference,
    public_update,
    resident_actions,
    supersedes,
    validate_submission,
)
from services.intake.settings import DEMO_CATALOG
from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseNoteAdded,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
)
from tests.intake.conftest import VALID

CATALOG = load_catalog(DEMO_CATALOG)


def fields_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidSubmission) as caught:
        validate_submission(data, CATALOG)
    return [e.field for e in caught.value.errors]


def test_a_valid_submission_is_cleaned() -> None:
    s = validate_submission(
        {**VALID, "title": "  Đe\u0300n  ", "email": "A@Example.VN", "location": ""}, CATALOG
    )
    assert s.title == "Đèn"  # NFC: the decomposed grave accent composes
    assert s.email == "a@example.vn"
    assert s.location is None
    assert s.wants_updates is True
    assert s.language == "vi"


def test_every_broken_rule_is_reported_at_once() -> None:
    assert fields_of({}) == ["unit_id", "category_id", "title", "description", "consent"]


@pytest.mark.parametrize(
    ("field", "ok", "too_long"),
    [("title", 200, 201), ("description", 5000, 5001), ("location", 300, 301), ("name", 100, 101)],
)
def test_length_limits(field: str, ok: int, too_long: int) -> None:
    validate_submission({**VALID, field: "x" * ok}, CATALOG)
    assert fields_of({**VALID, field: "x" * too_long}) == [field]


@pytest.mark.parametrize("phone", ["0912345678", "+84 912 345 678"])
def test_phone_numbers_accepted(phone: str) -> None:
    assert validate_submission({**VALID, "phone": phone}, CATALOG).phone == phone


@pytest.mark.parametrize("phone", ["abc", "12-34", "+84", "0" * 21, "++84912345678"])
def test_phone_numbers_refused(phone: str) -> None:
    assert fields_of({**VALID, "phone": phone}) == ["phone"]


@pytest.mark.parametrize("email", ["a", "a@b", "a b@c.vn", "@c.vn", "a@@c.vn", "x" * 250 + "@c.vn"])
def test_emails_refused(email: str) -> None:
    assert fields_of({**VALID, "email": email}) == ["email"]


def test_only_units_below_ward_level_are_selectable() -> None:
    assert fields_of({**VALID, "unit_id": "an-giang"}) == ["unit_id"]
    assert fields_of({**VALID, "unit_id": "my-hoa-hung"}) == ["unit_id"]
    validate_submission({**VALID, "unit_id": "my-thoi-thoi-an-a"}, CATALOG)


def test_consent_must_be_literally_true() -> None:
    for consent in (False, "true", 1, None):
        assert fields_of({**VALID, "consent": consent}) == ["consent"]


def test_updates_need_a_way_to_reach_the_resident() -> None:
    s = validate_submission({**VALID, "phone": None, "email": None}, CATALOG)
    assert s.notify is True
    assert s.wants_updates is False
    s = validate_submission({**VALID, "notify": False}, CATALOG)
    assert s.wants_updates is False


def test_reference_format_and_reading() -> None:
    refs = {new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in refs:
        assert ref.startswith("PA-")
        assert len(ref) == 12
        assert set(ref[3:7] + ref[8:]) <= set(REFERENCE_ALPHABET)
        assert parse_reference(ref) == ref
    assert not set("ILOU") & set(REFERENCE_ALPHABET)
    assert parse_reference("pa 7k3m 9qx2") == "PA-7K3M-9QX2"
    assert parse_reference("PA-7K3M-9QXO") == "PA-7K3M-9QX0"
    assert parse_reference("PA-7K3M-9QXU") is None
    assert parse_reference("short") is None


def test_tracking_tokens_are_long_random_and_stored_hashed() -> None:
    tokens = {new_tracking_token() for _ in range(1000)}
    assert len(tokens) == 1000
    token = next(iter(tokens))
    assert len(token) >= 43  # 32 random bytes, base64url
    assert hash_token(token) == hash_token(token) != token
    assert len(hash_token(token)) == 64


def test_masking() -> None:
    assert mask_email("nguyen@example.vn") == "n***@example.vn"
    assert mask_phone("0912 345 678") == "***678"
    assert mask_email(None) is None
    assert mask_phone(None) is None


def _case(cls: type[Any], **fields: Any) -> Any:
    return cls.new(
        producer="routing",
        petition_id=uuid.uuid4(),
        case_id=uuid.uuid4(),
        **fields,
    )


def test_routing_events_map_to_public_statuses() -> None:
    due = datetime(2030, 1, 1, tzinfo=UTC)
    a = public_update(
        _case(
            CaseAssigned,
            rung=1,
            unit_id="u",
            member_id="m",
            member_username="m",
            member_name="Tên",
            due_at=due,
        )
    )
    assert a is not None
    assert a.status == "assigned"
    assert a.deadline == ("set", due)
    assert a.rung == 1
    assert "Tên" not in a.message_vi
    statuses: dict[type[Any], tuple[dict[str, Any], str]] = {
        CaseAccepted: ({"member_id": "m"}, "in_progress"),
        CaseResolved: ({"member_id": "m", "explanation": "xong"}, "resolved"),
        CaseReopened: ({"from_rung": 0}, "reopened"),
        CaseEscalated: ({"from_rung": 0, "to_rung": 1, "reason": "deadline_passed"}, "escalated"),
        CaseClosed: ({"reason": "quiet_period"}, "closed"),
    }
    for cls, (fields, status) in statuses.items():
        update = public_update(_case(cls, **fields))
        assert update is not None, cls
        assert update.status == status, cls
    resolved = public_update(_case(CaseResolved, member_id="m", explanation="xong"))
    assert resolved is not None
    assert resolved.detail == "xong"
    assert public_update(_case(CaseNoteAdded, member_id="m", note="nội bộ")) is None


def test_newer_events_win_and_ties_follow_the_lifecycle() -> None:
    t = datetime(2030, 1, 1, tzinfo=UTC)
    later, earlier = t + timedelta(seconds=1), t - timedelta(seconds=1)
    kw: dict[str, Any] = {"current_status": "in_progress", "current_event_at": t}
    assert supersedes(**kw, new_status="resolved", occurred_at=later)
    assert not supersedes(**kw, new_status="assigned", occurred_at=earlier)
    assert supersedes(
        current_status="submitted",
        current_event_at=None,
        new_status="assigned",
        occurred_at=earlier,
    )
    assert supersedes(
        current_status="escalated", current_event_at=t, new_status="assigned", occurred_at=t
    )
    assert not supersedes(
        current_status="assigned", current_event_at=t, new_status="escalated", occurred_at=t
    )


def test_catalog_is_checked() -> None:
    assert "my-thoi-thoi-an-a-to-4" in CATALOG.units
    with pytest.raises(CatalogError):
        parse_catalog({"units": [{"id": "a", "parent_id": "zz", "kind": "group", "name": "A"}]})
    with pytest.raises(CatalogError):
        parse_catalog({"units": [{"id": "a", "kind": "city", "name": "A"}]})
    with pytest.raises(CatalogError):
        parse_catalog([])


def test_who_holds_the_case_is_said_in_plain_words() -> None:
    assert holder_label(0) == ("cán bộ phụ trách địa bàn", "the member serving your area")
    assert holder_label(1) == ("trưởng/bí thư đơn vị", "the unit's leader")
    assert holder_label(2) == ("lãnh đạo phường, xã", "ward or commune leadership")
    assert holder_label(3)[1] == "leadership above the ward or commune"
    for rung in range(5):
        update = public_update(_case(CaseAssigned, **_assigned_fields(rung)))
        assert update is not None
        assert "cấp xử lý" not in update.message_vi
        assert "level" not in update.message_en
        assert "rung" not in update.message_en


def _assigned_fields(rung: int) -> dict[str, Any]:
    return {
        "rung": rung,
        "unit_id": "u",
        "member_id": "m",
        "member_username": "m",
        "member_name": "Tên Cán Bộ",
    }


def test_routing_events_residents_see_without_a_status_change() -> None:
    declined = public_update(
        _case(CaseDeclined, member_id="m", reason_code="away", comment="Nguyễn A nghỉ phép")
    )
    assert declined is not None
    assert declined.status is None
    assert "Nguyễn A" not in declined.message_vi + declined.message_en + str(declined.detail)
    top = public_update(
        _case(
            CaseOverdueAtTop,
            rung=2,
            unit_id="u",
            member_ids=["m"],
            due_at=datetime(2030, 1, 1, tzinfo=UTC),
            day="2030-01-02",
        )
    )
    assert top is not None
    assert top.status is None
    assert top.once is True
    rejected = public_update(_case(CaseRejected, actor="lead", reason="Ngoài thẩm quyền"))
    assert rejected is not None
    assert (rejected.status, rejected.detail) == ("rejected", "Ngoài thẩm quyền")
    asked = public_update(
        _case(CaseQuestionAsked, member_id="m", question_id=uuid.uuid4(), question="Ở đâu?")
    )
    assert asked is not None
    assert (asked.status, asked.detail) == ("waiting_for_resident", "Ở đâu?")
    resumed = public_update(_case(CaseResumed, reason="max_wait"))
    assert resumed is not None
    assert resumed.status == "in_progress"


def test_withdrawn_and_rejected_petitions_stay_so() -> None:
    t = datetime(2030, 1, 1, tzinfo=UTC)
    for final in ("withdrawn", "rejected", "closed"):
        assert not supersedes(
            current_status=final,
            current_event_at=t,
            new_status="resolved",
            occurred_at=t + timedelta(days=1),
        )


def test_escalation_may_be_asked_when_overdue_once_a_day() -> None:
    now = datetime(2030, 1, 10, tzinfo=UTC)
    due = now - timedelta(hours=1)
    assert escalation_check(status="assigned", due_at=due, last_request_at=None, now=now) == (
        "allowed",
        None,
    )
    assert escalation_check(
        status="assigned", due_at=now + timedelta(hours=1), last_request_at=None, now=now
    ) == ("not_overdue", None)
    assert escalation_check(status="assigned", due_at=None, last_request_at=None, now=now)[0] == (
        "not_overdue"
    )
    for status in ("waiting_for_resident", "resolved", "withdrawn", "submitted"):
        assert escalation_check(status=status, due_at=due, last_request_at=None, now=now)[0] == (
            "not_open"
        ), status
    last = now - timedelta(hours=23)
    assert escalation_check(status="in_progress", due_at=due, last_request_at=last, now=now) == (
        "too_soon",
        last + timedelta(hours=24),
    )
    assert escalation_check(
        status="in_progress", due_at=due, last_request_at=now - timedelta(hours=24), now=now
    ) == ("allowed", None)


def test_resident_actions_follow_the_state() -> None:
    now = datetime(2030, 1, 10, tzinfo=UTC)
    row: dict[str, Any] = {
        "status": "waiting_for_resident",
        "due_at": None,
        "escalation_requested_at": None,
        "contact_erased_at": None,
        "question_id": str(uuid.uuid4()),
        "wants_updates": True,
        "name": None,
        "phone": "0912345678",
        "email": None,
    }
    actions = resident_actions(row, now)
    assert actions.answer
    assert actions.withdraw
    assert actions.stop_updates
    assert actions.erase_contact
    assert not actions.give_feedback
    assert not actions.request_escalation
    erased = resident_actions(
        {**row, "status": "withdrawn", "contact_erased_at": now, "phone": None}, now
    )
    assert not erased.answer
    assert not erased.withdraw
    assert not erased.stop_updates
    assert not erased.erase_contact
