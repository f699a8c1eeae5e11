"""notify's rules without servers: summaries, who is told what, keys, retry schedule, emails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notify.channels import build_message, message_id, render, template_environment
from services.notify.directory import parse_contact
from services.notify.notifications import (
    idempotency_key,
    plan_notifications,
    retry_delay,
)
from services.notify.settings import Settings
from services.notify.timeline import kind_of, status_label, summarise
from shared.events import CATALOGUE, CaseAccepted, CaseAssigned, CaseEscalated, CaseResolved
from shared.rpc import ContactReply

PID = uuid.UUID("11111111-2222-3333-4444-555555555555")


def assigned(**fields: object) -> CaseAssigned:
    base: dict[str, Any] = {
        "case_id": uuid.uuid4(),
        "rung": 0,
        "unit_id": "khom-thoi-an-a",
        "member_id": "m-lan",
        "member_username": "lan",
        "member_name": "Nguyễn Thị Lan",
        "member_email": "lan@example.org",
        "due_at": datetime(2025, 3, 3, 2, 30, tzinfo=UTC),
    }
    base.update(fields)
    return CaseAssigned.new(producer="routing", petition_id=PID, **base)


def resolved() -> CaseResolved:
    return CaseResolved.new(
        producer="routing",
        petition_id=PID,
        case_id=uuid.uuid4(),
        member_id="m-lan",
        explanation="Đã thay bóng đèn",
    )


def test_every_catalogued_event_has_a_kind_and_a_bilingual_summary() -> None:
    kinds = {kind_of(t) for t in CATALOGUE.values()}
    assert len(kinds) == len(CATALOGUE)
    event = CaseEscalated.new(
        producer="routing",
        petition_id=PID,
        case_id=uuid.uuid4(),
        from_rung=0,
        to_rung=1,
        reason="deadline_passed",
    )
    summary = summarise(event)
    assert summary.vi == "Chuyển từ cấp 0 lên cấp 1: quá hạn xử lý"
    assert summary.en == "Escalated from rung 0 to rung 1: deadline passed"
    assert summarise(assigned()).vi.startswith("Giao cho Nguyễn Thị Lan")


def test_status_labels_ignore_events_that_change_no_status() -> None:
    assert status_label("resolved", {}) == ("Đã giải quyết", "Resolved")
    assert status_label("note_added", {}) is None
    assert status_label("feedback_given", {"resolved": False}) == (
        "Người dân báo chưa giải quyết",
        "Resident says not resolved",
    )


def test_assignment_tells_the_member_and_resolution_tells_the_resident() -> None:
    [to_member] = plan_notifications(assigned())
    assert (to_member.recipient_kind, to_member.recipient_ref) == ("member", "m-lan")
    assert to_member.recipient_address == "lan@example.org"
    # The event said this member has no address: known-none, not "ask routing".
    [no_address] = plan_notifications(assigned(member_email=None))
    assert no_address.recipient_address == ""
    [to_resident] = plan_notifications(resolved())
    assert (to_resident.recipient_kind, to_resident.recipient_ref) == ("resident", "resident")
    # The resident's address is asked of intake at send time, never carried or kept.
    assert to_resident.recipient_address is None
    accepted = CaseAccepted.new(
        producer="routing", petition_id=PID, case_id=uuid.uuid4(), member_id="m"
    )
    assert plan_notifications(accepted) == []


def test_idempotency_key_names_petition_transition_recipient_and_channel() -> None:
    key = idempotency_key(
        petition_id="p", transition="e", recipient_kind="member", recipient_ref="m", channel="email"
    )
    assert key == "p:e:member:m:email"
    assert message_id(key) == message_id(key)
    assert message_id(key) != message_id(key + "x")
    assert message_id(key).startswith("<")
    assert message_id(key).endswith("@petitions.local>")


def test_retry_delay_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    top = [retry_delay(n, base_s=30, max_s=600, rand=lambda: 1.0) for n in range(1, 8)]
    assert top == [30, 60, 120, 240, 480, 600, 600]
    bottom = [retry_delay(n, base_s=30, max_s=600, rand=lambda: 0.0) for n in range(1, 4)]
    assert bottom == [15, 30, 60]
    assert retry_delay(1000, base_s=1, max_s=5, rand=lambda: 1.0) == 5
    with pytest.raises(ValueError, match="attempt"):
        retry_delay(0, base_s=1, max_s=5)


def test_resolution_email_is_vietnamese_first_then_english_with_the_tracking_link() -> None:
    content = render(
        template_environment(),
        "case_resolved",
        {
            "reference": "PA-2025-000123",
            "title": None,
            "case_id": "c",
            "explanation": "Đã thay bóng đèn <b>mới</b>",
            "recipient_name": "Trần Văn Bình",
            "link": "http://127.0.0.1:8000/track/tok123",
        },
    )
    assert content.subject == "[Phản ánh PA-2025-000123] Đã được giải quyết / Resolved"
    for body in (content.text, content.html):
        assert body.index("Kính gửi") < body.index("Dear")
        assert "http://127.0.0.1:8000/track/tok123" in body
    # What a member wrote is text, never markup.
    assert "&lt;b&gt;mới&lt;/b&gt;" in content.html
    assert "<b>mới</b>" in content.text
    msg = build_message(
        content,
        sender="Petitions <no-reply@petitions.local>",
        to="binh@example.org",
        message_id="<x@petitions.local>",
        now=datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert msg.get_body(("plain",)) is not None
    assert msg.get_body(("html",)) is not None
    assert msg["Message-ID"] == "<x@petitions.local>"


def test_assignment_email_shows_the_deadline_in_vietnam_time() -> None:
    content = render(
        template_environment(),
        "case_assigned",
        {
            "reference": "PA-1",
            "title": "Đèn đường hỏng",
            "case_id": "c",
            "recipient_name": "Lan",
            "rung": 0,
            "reason": "initial",
            "due_at": "2025-03-03T02:30:00+00:00",
            "link": "http://127.0.0.1:8001/cases/c",
        },
    )
    assert "03/03/2025 09:30" in content.text
    assert "http://127.0.0.1:8001/cases/c" in content.html
    assert content.subject.startswith("[Phản ánh PA-1] ")


def test_contact_reply_parsing() -> None:
    assert parse_contact(ContactReply(found=False)) is None
    # An erased resident is never contacted again, whatever else the reply says.
    assert (
        parse_contact(ContactReply(found=True, erased=True, email="x@y", wants_updates=True))
        is None
    )
    contact = parse_contact(
        ContactReply(found=True, email="", wants_updates=True, tracking_url="u", name="B")
    )
    assert contact is not None
    assert contact.email is None
    assert contact.language == "vi"
    assert contact.wants_updates


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETITIONS_NOTIFY_DATABASE_URL", "postgres://u@h/notify")
    monkeypatch.setenv("PETITIONS_VAR_DIR", "/tmp/pv")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u@h/notify"
    assert settings.port == 8002
    assert settings.embedded_mailbox
    assert str(settings.mailbox_dir) == "/tmp/pv/mail"
    monkeypatch.setenv("PETITIONS_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("PETITIONS_MAIL_DIR", "/tmp/box")
    settings = Settings()
    assert not settings.embedded_mailbox
    assert str(settings.mailbox_dir) == "/tmp/box"
    monkeypatch.setenv("PETITIONS_NOTIFY_DATABASE_URL", "mysql://x")
    with pytest.raises(ValueError, match="PostgreSQL"):
        Settings()


def test_the_service_refuses_bad_configuration_with_a_bilingual_message() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PETITIONS_NOTIFY_DATABASE_URL": "mysql://x"}
    done = subprocess.run(
        [sys.executable, "-m", "services.notify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cấu hình không hợp lệ / invalid configuration" in done.stderr
    assert "PETITIONS_NOTIFY_DATABASE_URL" in done.stderr
