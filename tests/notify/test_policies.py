"""notify's policies without servers: who is told what (the table in docs/notifications.md),
every template in both languages, quiet hours, webhook signatures, the channels file and
meeting schedules."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.notify.channels import (
    LANGUAGES,
    TEMPLATES_DIR,
    render,
    sign,
    template_environment,
    text_to_html,
    verify_signature,
)
from services.notify.config import (
    DEMO_CHANNELS_FILE,
    ChannelsFileError,
    Meeting,
    QuietHours,
    load_config,
    parse_config,
)
from services.notify.directory import Member
from services.notify.facts import replay
from services.notify.notifications import plan_notifications, quiet_until
from services.notify.scheduled import FactRow, build_digest, digest_due, meeting_window
from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseNoteAdded,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReminderDue,
    CaseReopened,
    CaseResolved,
    Event,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PID = uuid.UUID("22222222-2222-3333-4444-555555555555")
CASE = uuid.UUID("33333333-2222-3333-4444-555555555555")
T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def ev(cls: type[Event], minutes: int, **fields: Any) -> Any:
    if cls is not PetitionSubmitted and cls.__module__.endswith("routing"):
        fields.setdefault("case_id", CASE)
    return cls.new(
        producer="test", petition_id=PID, occurred_at=T0 + timedelta(minutes=minutes), **fields
    )


SUBMITTED = ev(
    PetitionSubmitted,
    0,
    reference="PA-1",
    unit_id="to-1",
    category_id="roads",
    title="Đèn",
    description="d",
)
ASSIGNED = ev(
    CaseAssigned,
    1,
    rung=0,
    unit_id="khom",
    member_id="lan",
    member_username="lan",
    member_name="Lan",
    member_email="lan@example.org",
    due_at=T0 + timedelta(days=3),
)
RESOLVED = ev(CaseResolved, 60, member_id="lan", explanation="xong")
ESCALATED = ev(
    CaseEscalated, 70, from_rung=0, to_rung=1, reason="deadline_passed", from_member_id="lan"
)
TO_LEADER = ev(
    CaseAssigned,
    71,
    rung=1,
    unit_id="khom",
    member_id="bithu",
    member_username="bithu",
    member_name="Bí thư",
    reason="escalated",
    previous_member_id="lan",
)
HISTORY = [SUBMITTED, ASSIGNED, RESOLVED]
FACTS = replay(str(PID), HISTORY)

# (event, facts so far, what is expected: (recipient kind, recipient ref, template) ...)
TABLE: list[tuple[str, Event, list[tuple[str, str, str]]]] = [
    ("received", SUBMITTED, [("resident", "resident", "petition_received")]),
    (
        "question",
        ev(CaseQuestionAsked, 5, member_id="lan", question_id=uuid.uuid4(), question="Ở đâu?"),
        [("resident", "resident", "question_asked")],
    ),
    ("resolved", RESOLVED, [("resident", "resident", "case_resolved")]),
    (
        "escalated",
        ESCALATED,
        [("resident", "resident", "case_escalated"), ("member", "lan", "case_taken_away")],
    ),
    (
        "closed",
        ev(CaseClosed, 90, reason="quiet_period"),
        [("resident", "resident", "case_closed")],
    ),
    ("withdrawn", ev(CaseClosed, 90, reason="withdrawn"), []),
    (
        "rejected",
        ev(CaseRejected, 90, actor="dang-uy", reason="ngoài phạm vi"),
        [("resident", "resident", "case_closed")],
    ),
    ("assigned", ASSIGNED, [("member", "lan", "case_assigned")]),
    ("escalated to leader", TO_LEADER, [("member", "bithu", "case_escalated_to_you")]),
    (
        "reassigned",
        ev(
            CaseAssigned,
            30,
            rung=0,
            unit_id="khom",
            member_id="tai",
            member_username="tai",
            member_name="Tài",
            reason="reassigned",
            previous_member_id="lan",
        ),
        [("member", "tai", "case_assigned"), ("member", "lan", "case_taken_away")],
    ),
    (
        "reminder",
        ev(
            CaseReminderDue,
            40,
            member_id="lan",
            rung=0,
            kind="holder",
            fraction=0.75,
            due_at=T0 + timedelta(days=3),
        ),
        [("member", "lan", "deadline_reminder")],
    ),
    (
        "heads-up to the next rung",
        ev(
            CaseReminderDue,
            40,
            member_id="bithu",
            rung=0,
            kind="next_rung",
            fraction=0.9,
            due_at=T0 + timedelta(days=3),
        ),
        [("member", "bithu", "deadline_warning")],
    ),
    (
        "reopened",
        ev(CaseReopened, 80, from_rung=0, comment="vẫn tắt"),
        [("member", "lan", "case_reopened")],
    ),
    (
        "overdue at the top",
        ev(
            CaseOverdueAtTop,
            900,
            rung=3,
            unit_id="ward",
            member_ids=["dang-uy-1", "dang-uy-2", "dang-uy-1"],
            due_at=T0,
            day="2025-03-04",
        ),
        [
            ("member", "dang-uy-1", "overdue_at_top"),
            ("member", "dang-uy-2", "overdue_at_top"),
        ],
    ),
    ("accepted", ev(CaseAccepted, 2, member_id="lan"), []),
    ("note", ev(CaseNoteAdded, 3, member_id="lan", note="n"), []),
    ("feedback", ev(FeedbackGiven, 85, resolved=True), []),
    ("withdrawn by resident", ev(PetitionWithdrawn, 85), []),
]


@pytest.mark.parametrize(("name", "event", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_who_is_told_what(name: str, event: Event, expected: list[tuple[str, str, str]]) -> None:
    planned = plan_notifications(event, replay(str(PID), [*HISTORY, event]))
    assert [(p.recipient_kind, p.recipient_ref, p.template) for p in planned] == expected


def test_the_docs_table_names_every_template() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "notifications.md").read_text(encoding="utf-8")
    templates = {p.stem for p in (TEMPLATES_DIR / "messages" / "vi").glob("*.j2")}
    assert templates == {p.stem for p in (TEMPLATES_DIR / "messages" / "en").glob("*.j2")}
    for template in templates:
        assert f"`{template}`" in doc, template


def _context_for(template: str) -> dict[str, Any]:
    """What the planner and the delivery worker put in, with hostile text everywhere."""
    evil = "<script>x</script>"
    base: dict[str, Any] = {
        "reference": "PA-1",
        "title": evil,
        "recipient_name": evil,
        "link": "http://127.0.0.1:8000/track/t?a=1&b=2",
        "case_id": "c",
    }
    for planned in [p for _, e, _ in TABLE for p in plan_notifications(e, FACTS)]:
        if planned.template == template:
            base.update(
                {
                    k: evil
                    if isinstance(v, str)
                    and k.endswith(("question", "explanation", "comment", "reason_text"))
                    else v
                    for k, v in planned.context.items()
                }
            )
            return base
    item = {**base, "rung": 0, "due_at": T0.isoformat()}
    if template == "case_assigned_batch":
        return {**base, "items": [item, {**item, "reference": "PA-2"}]}
    if template == "meeting_digest":
        member = {"name": evil, "open": [item], "overdue": [item], "escalated": [], "resolved": []}
        return {
            **base,
            "unit_name": "Ấp Mỹ Khánh 2",
            "meeting_at": T0.isoformat(),
            "since": T0.isoformat(),
            "totals": {"open": 1, "overdue": 1, "escalated": 0, "resolved": 0},
            "members": [member],
        }
    if template in ("account_reset", "account_invite"):
        # Put in by notify's account handler (services/notify/accounts.py), not the planner.
        return {**base, "username": evil, "expires_at": T0}
    if template == "tracking_link_recovered":
        return base
    raise AssertionError(f"no context for {template}")


@pytest.mark.parametrize(
    "template", sorted(p.stem for p in (TEMPLATES_DIR / "messages" / "vi").glob("*.j2"))
)
def test_every_template_renders_in_both_languages_and_escapes_html(template: str) -> None:
    content = render(template_environment(), template, _context_for(template))
    for language in LANGUAGES:
        part = content.lang(language)
        assert part.subject
        assert part.body
        assert part.short
        assert "<script>" not in part.html
    assert content.text.index(content.vi.body) < content.text.index(content.en.body)
    assert "<script>" not in content.html
    assert "&lt;script&gt;" in content.html
    assert content.vi.body != content.en.body


def test_plain_text_becomes_html_with_links_and_no_markup() -> None:
    html = text_to_html("Xem <b>tại</b>:\nhttp://x.example/a?b=1&c=2\n\nhết")
    assert html.count("<p>") == 2
    assert '<a href="http://x.example/a?b=1&amp;c=2">' in html
    assert "&lt;b&gt;" in html


@pytest.mark.parametrize(
    ("local", "released"),
    [
        ("2025-03-03 22:30", "2025-03-04 07:00"),
        ("2025-03-03 21:00", "2025-03-04 07:00"),
        ("2025-03-04 06:59", "2025-03-04 07:00"),
        ("2025-03-04 07:00", None),
        ("2025-03-04 12:00", None),
        ("2025-03-04 20:59", None),
    ],
)
def test_quiet_hours_hold_sms_until_seven_in_the_morning(local: str, released: str | None) -> None:
    quiet = QuietHours(start=time(21), end=time(7), channels=("sms",))
    now = datetime.fromisoformat(local).replace(tzinfo=VN).astimezone(UTC)
    until = quiet_until(now, quiet, "sms", VN)
    expected = (
        datetime.fromisoformat(released).replace(tzinfo=VN).astimezone(UTC) if released else None
    )
    assert until == expected
    # Email does not wake anybody: it is never held.
    assert quiet_until(now, quiet, "email", VN) is None


def test_quiet_hours_within_one_day() -> None:
    quiet = QuietHours(start=time(12), end=time(14), channels=("zalo",))
    noon = datetime(2025, 3, 3, 12, 30, tzinfo=VN)
    assert quiet_until(noon, quiet, "zalo", VN) == datetime(2025, 3, 3, 14, 0, tzinfo=VN)
    assert quiet_until(noon.replace(hour=15), quiet, "zalo", VN) is None


def test_webhook_signature_covers_timestamp_and_body() -> None:
    body = b'{"a":1}'
    signature = sign("s3cret", 1_700_000_000, body)
    expected = hmac.new(b"s3cret", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert signature == f"v1={expected}"
    ok = {"timestamp": "1700000000", "body": body, "signature": signature}
    assert verify_signature("s3cret", now=1_700_000_100, **ok)  # type: ignore[arg-type]
    assert not verify_signature("other", now=1_700_000_100, **ok)  # type: ignore[arg-type]
    # A replay much later is refused even with a valid signature.
    assert not verify_signature("s3cret", now=1_700_001_000, **ok)  # type: ignore[arg-type]
    assert not verify_signature(
        "s3cret", timestamp="1700000000", body=b'{"a":2}', signature=signature, now=1_700_000_000
    )


def test_the_demo_channels_file_loads_and_bad_files_say_where() -> None:
    config = load_config(None)
    assert config.meetings["my-hoa-hung-my-khanh-2"].day_of_month == 5
    assert config.member_channels("anyone") == ("email",)
    assert DEMO_CHANNELS_FILE.exists()
    with pytest.raises(ChannelsFileError, match=r"preferences.members: .*unknown channel 'fax'"):
        parse_config({"preferences": {"members": ["fax"]}}, source="x.yaml")
    with pytest.raises(ChannelsFileError, match="exactly one of day_of_month or weekday"):
        parse_config({"meetings": {"u": {"at": "19:30"}}})
    with pytest.raises(ChannelsFileError, match="unknown time zone"):
        parse_config({"timezone": "Mars/Olympus"})
    with pytest.raises(ChannelsFileError, match="url must start with http"):
        parse_config({"webhooks": {"sms": {"url": "ftp://x"}}})
    config = parse_config(
        {
            "webhooks": {"sms": {"url": "http://127.0.0.1:1/x", "needs_phone": True}},
            "preferences": {
                "residents": ["sms", "email"],
                "members": ["email", "in_app"],
                "member_overrides": {"bithu": ["sms", "email"]},
            },
        }
    )
    assert config.resident_channels() == ("sms", "email")
    # In-app is always there for staff; it is not a push channel.
    assert config.member_channels("lan") == ("email",)
    assert config.member_channels("bithu") == ("sms", "email")


def test_production_refuses_the_demo_webhook_secret_when_webhooks_are_configured() -> None:
    from services.notify.config import refuse_unsafe
    from services.notify.settings import Settings

    strong = "x" * 40
    smtp = "smtp.example.vn"
    assert Settings(env="production", secret_key=strong, smtp_host=smtp).webhook_secret_is_weak
    assert not Settings(
        env="production", secret_key=strong, webhook_secret=strong, smtp_host=smtp
    ).webhook_secret_is_weak
    hooks = parse_config({"webhooks": {"sms": {"url": "https://gw.example.vn/x"}}})
    with pytest.raises(ChannelsFileError, match="PETITIONS_NOTIFY_WEBHOOK_SECRET"):
        refuse_unsafe(hooks, production=True, weak_webhook_secret=True)
    refuse_unsafe(hooks, production=False, weak_webhook_secret=True)
    # Without webhooks there is nothing to sign.
    refuse_unsafe(parse_config({}), production=True, weak_webhook_secret=True)


def test_the_service_refuses_a_bad_channels_file(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    bad = tmp_path / "channels.yaml"
    bad.write_text("preferences:\n  members: [fax]\n", encoding="utf-8")
    env = {**os.environ, "PETITIONS_NOTIFY_CHANNELS_FILE": str(bad)}
    done = subprocess.run(
        [sys.executable, "-m", "services.notify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid channel configuration" in done.stderr
    assert "unknown channel 'fax'" in done.stderr
    assert str(bad) in done.stderr


def test_monthly_meeting_digest_goes_out_a_day_before() -> None:
    meeting = Meeting(day_of_month=5, at=time(19, 30), digest_hours_before=24)
    now = datetime(2025, 3, 4, 19, 29, tzinfo=VN)
    assert digest_due(meeting, VN, now) is None
    since, at = digest_due(meeting, VN, now + timedelta(minutes=1)) or (None, None)
    assert at == datetime(2025, 3, 5, 19, 30, tzinfo=VN)
    assert since == datetime(2025, 2, 5, 19, 30, tzinfo=VN)
    # Right after the meeting the next one is a month away.
    assert meeting_window(meeting, VN, datetime(2025, 3, 5, 19, 31, tzinfo=VN))[1] == datetime(
        2025, 4, 5, 19, 30, tzinfo=VN
    )
    # The 31st in a short month falls on its last day.
    late = Meeting(day_of_month=31, at=time(8), digest_hours_before=24)
    assert meeting_window(late, VN, datetime(2025, 2, 10, tzinfo=VN))[1] == datetime(
        2025, 2, 28, 8, 0, tzinfo=VN
    )
    weekly = Meeting(weekday=0, at=time(19), digest_hours_before=24)
    assert meeting_window(weekly, VN, datetime(2025, 3, 5, tzinfo=VN)) == (
        datetime(2025, 3, 3, 19, 0, tzinfo=VN),
        datetime(2025, 3, 10, 19, 0, tzinfo=VN),
    )


def test_digest_lists_open_overdue_escalated_and_resolved_per_member() -> None:
    since = datetime(2025, 2, 5, 12, 30, tzinfo=UTC)
    now = datetime(2025, 3, 4, 12, 30, tzinfo=UTC)

    def rung(
        member: str, unit: str, outcome: str, ended: datetime | None, **kw: Any
    ) -> dict[str, Any]:
        return {
            "rung": kw.get("rung", 0),
            "member_id": member,
            "member_name": member.title(),
            "unit_id": unit,
            "case_id": "c",
            "outcome": outcome,
            "ended_at": ended.isoformat() if ended else None,
            "on_time": kw.get("on_time"),
        }

    def fact(
        ref: str,
        status: str,
        rungs: list[dict[str, Any]],
        due: datetime | None = None,
        origin: str = "to-1",
    ) -> FactRow:
        return FactRow(
            ref, ref, f"title {ref}", origin, status, rungs[-1]["member_id"], 0, due, rungs
        )

    facts = [
        fact("A", "accepted", [rung("lan", "khom", "open", None)], due=now + timedelta(days=1)),
        fact("B", "assigned", [rung("lan", "khom", "open", None)], due=now - timedelta(hours=1)),
        fact(
            "C", "closed", [rung("tai", "khom", "resolved", now - timedelta(days=3), on_time=True)]
        ),
        # Resolved before the last meeting: not in this digest.
        fact("D", "closed", [rung("tai", "khom", "resolved", since - timedelta(days=1))]),
        fact(
            "E",
            "assigned",
            [
                rung("tai", "khom", "escalated", now - timedelta(days=2)),
                rung("leader", "ward", "open", None, rung=1),
            ],
            due=now + timedelta(days=2),
        ),
        # Another unit's case.
        fact("F", "assigned", [rung("x", "other", "open", None)], origin="other"),
    ]
    members = [
        Member("lan", "Lan", "lan@x", "khom", "member", True),
        Member("tai", "Tài", None, "khom", "member", True),
        Member("quiet", "Quiet", None, "khom", "member", True),
    ]
    digest = build_digest(
        unit_id="khom",
        unit_name="Khóm",
        members=members,
        facts=facts,
        since=since,
        meeting_at=now + timedelta(days=1),
        now=now,
        case_link=lambda c: f"/cases/{c}",
    )
    assert digest["totals"] == {"open": 3, "overdue": 1, "escalated": 1, "resolved": 1}
    rows = {m["member_id"]: m for m in digest["members"]}
    refs = {
        mid: {
            k: [c["reference"] for c in m[k]] for k in ("open", "overdue", "escalated", "resolved")
        }
        for mid, m in rows.items()
    }
    assert refs["lan"] == {"open": ["A", "B"], "overdue": ["B"], "escalated": [], "resolved": []}
    assert refs["tai"] == {"open": [], "overdue": [], "escalated": ["E"], "resolved": ["C"]}
    assert refs["quiet"] == {"open": [], "overdue": [], "escalated": [], "resolved": []}
    # A case that went up to the ward is still the unit's, listed under its holder now.
    assert refs["leader"]["open"] == ["E"]
    assert "x" not in rows
