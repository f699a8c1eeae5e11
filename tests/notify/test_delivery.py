"""Delivery you can trust, against real servers: an SMTP server (aiosmtpd) that goes down and
comes back, a webhook receiver (uvicorn on 127.0.0.1) that answers 500 or 400, fallback to the
next channel, quiet hours and batching with a fixed clock, the in-app inbox, residents who must
never be contacted, and the meeting digest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import MetaData, select

from services.notify.models import notifications
from shared.clock import FixedClock
from shared.db import create_engine
from shared.events import (
    CaseAssigned,
    CaseReminderDue,
    CaseResolved,
    PetitionSubmitted,
    TrackingLinkRequested,
)
from tests.support import eventually, free_port

from .conftest import (
    fake_intake,
    fake_routing,
    make_config,
    make_settings,
    running_notify,
    session,
    smtp_server,
    token,
    webhook_receiver,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def submitted(pid: uuid.UUID, ref: str, *, unit: str = "khom", at: datetime | None = None) -> Any:
    return PetitionSubmitted.new(
        producer="intake",
        petition_id=pid,
        occurred_at=at,
        reference=ref,
        unit_id=unit,
        category_id="roads",
        title=f"Đèn hỏng {ref}",
        description="d",
        wants_updates=True,
    )


def assigned(
    pid: uuid.UUID,
    member: str = "m-lan",
    *,
    email: str | None = "lan@example.org",
    at: datetime | None = None,
    unit: str = "khom",
    due: timedelta = timedelta(days=3),
) -> Any:
    return CaseAssigned.new(
        producer="routing",
        petition_id=pid,
        occurred_at=at,
        case_id=uuid.uuid4(),
        rung=0,
        unit_id=unit,
        member_id=member,
        member_username=member,
        member_name=member.title(),
        member_email=email,
        due_at=(at or datetime.now(UTC)) + due,
    )


def resolved(pid: uuid.UUID, *, at: datetime | None = None) -> Any:
    return CaseResolved.new(
        producer="routing",
        petition_id=pid,
        occurred_at=at,
        case_id=uuid.uuid4(),
        member_id="m-lan",
        explanation="Đã thay bóng đèn",
    )


def resident(
    *, email: str | None = "binh@example.org", phone: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "found": True,
        "name": "Trần Văn Bình",
        "email": email,
        "phone": phone,
        "language": "vi",
        "wants_updates": True,
        "tracking_url": "http://127.0.0.1:8000/track/tok",
        **extra,
    }


async def test_smtp_down_for_a_while_then_back_delivers_everything_exactly_once(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(
        nats_url,
        database_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        delivery_max_attempts=100,
    )
    members = [f"m-{n}" for n in range(4)]
    residents = [uuid.uuid4() for _ in range(3)]
    async with fake_intake(nats_url) as intake, running_notify(settings) as notify:
        for pid in residents:
            intake.contacts[str(pid)] = resident(email=f"r-{pid.hex[:6]}@example.org")
            await notify.publish(resolved(pid))
        for member in members:
            await notify.publish(assigned(uuid.uuid4(), member, email=f"{member}@example.org"))

        async def all_failing_twice() -> bool:
            rows = await notify.notifications(channel="email")
            return len(rows) == 7 and all(
                r["status"] == "failed" and int(r["attempts"]) >= 2 for r in rows
            )

        await eventually(all_failing_twice, what="every email failed at least twice")
        async with smtp_server(port) as smtp:

            async def all_sent() -> bool:
                rows = await notify.notifications(channel="email")
                return all(r["status"] == "sent" for r in rows)

            await eventually(all_sent, what="every email delivered once the server is back")
            recipients = sorted(r for rcpt, _ in smtp.messages for r in rcpt)
            assert len(smtp.messages) == 7
            assert recipients == sorted(
                [f"{m}@example.org" for m in members]
                + [f"r-{p.hex[:6]}@example.org" for p in residents]
            )
            assert len({m["Message-ID"] for _, m in smtp.messages}) == 7
            # Nothing is sent again once marked sent: another round finds nothing due.
            assert await notify.app.state.delivery.deliver_due() == 0
            assert len(smtp.messages) == 7


async def test_webhook_answering_500_is_retried_then_parked_then_retried_by_hand(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = make_config(
        webhooks={"city": {"url": f"http://127.0.0.1:{port}/hook"}},
        preferences={"members": ["city"]},
    )
    settings = make_settings(nats_url, sqlite_url, tmp_path, delivery_max_attempts=3)
    pid = uuid.uuid4()
    async with (
        webhook_receiver(port, status=500) as receiver,
        running_notify(settings, config=config) as notify,
    ):
        await notify.publish(submitted(pid, "PA-9"))
        await notify.publish(assigned(pid))

        async def dead() -> list[dict[str, Any]]:
            return await notify.notifications(status="dead", channel="city")

        [row] = await eventually(dead, what="parked after three attempts")
        assert row["attempts"] == 3
        assert "HTTP 500" in row["last_error"]
        assert receiver.hits == 3
        assert receiver.bad_signatures == 0
        # Each try carried the same delivery id, so the receiver can tell repeats apart.
        assert len({r["_delivery"] for r in receiver.received}) == 1
        payload = receiver.received[0]
        assert payload["recipient"] == {
            "kind": "member",
            "language": "vi",
            "member_id": "m-lan",
            "name": "M-Lan",
        }
        assert payload["references"] == ["PA-9"]
        assert payload["template"] == "case_assigned"
        assert payload["text_vi"].startswith("Phan anh PA-9 giao cho dong chi")

        receiver.status = 200
        retried = await notify.http.post(
            f"/api/v1/notifications/{row['id']}/retry", headers=token("admin")
        )
        assert retried.status_code == 200, retried.text

        async def sent() -> list[dict[str, Any]]:
            return await notify.notifications(status="sent", channel="city")

        await eventually(sent, what="delivered after the manual retry")
        assert len(receiver.accepted()) == 1
        timeline = await notify.timeline(pid)
        assert timeline is not None
        city = [d for d in timeline["deliveries"] if d["channel"] == "city"]
        assert [(d["status"], d["attempts"]) for d in city] == [("sent", 1)]


async def test_a_permanent_refusal_falls_back_to_the_next_channel(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = make_config(
        webhooks={
            "zalo": {"url": f"http://127.0.0.1:{port}/hook"},
            "sms": {"url": f"http://127.0.0.1:{port}/hook", "needs_phone": True},
        },
        preferences={
            "members": ["email"],
            "member_overrides": {"m-lan": ["zalo", "email"]},
            "residents": ["sms", "email"],
        },
        # No quiet hours here: this test is about fallback, whatever the time of day.
        quiet_hours={"default": {"channels": []}},
    )
    settings = make_settings(nats_url, sqlite_url, tmp_path)
    member_case, with_phone, without_phone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with (
        webhook_receiver(port, status=400) as receiver,
        fake_intake(nats_url) as intake,
        running_notify(settings, config=config) as notify,
    ):
        await notify.publish(assigned(member_case))

        async def member_fell_back() -> list[dict[str, Any]] | None:
            rows = await notify.notifications(status="sent", channel="email")
            return rows or None

        [email] = await eventually(member_fell_back, what="email after zalo refused")
        [zalo] = await notify.notifications(status="dead", channel="zalo")
        assert zalo["attempts"] == 1, "a 400 is not retried"
        assert "falling back to email" in zalo["last_error"]
        assert email["fallback_of"] == zalo["id"]
        [mail] = notify.mailbox()
        assert mail["To"] == "lan@example.org"

        receiver.status = 200
        intake.contacts[str(with_phone)] = resident(phone="0912345678")
        intake.contacts[str(without_phone)] = resident(phone=None)
        await notify.publish(resolved(with_phone))
        await notify.publish(resolved(without_phone))

        async def both_reached() -> bool:
            return len(receiver.accepted()) == 1 and len(notify.mailbox()) == 2

        await eventually(both_reached, what="SMS to the phone, email to the other")
        [sms] = receiver.accepted()
        assert sms["recipient"]["phone"] == "0912345678"
        assert sms["petition_id"] == str(with_phone)
        log = await notify.timeline(without_phone)
        assert log is not None
        assert [(d["channel"], d["status"]) for d in log["deliveries"]] == [
            ("sms", "skipped"),
            ("email", "sent"),
        ]
        assert "no phone" in log["deliveries"][0]["last_error"]
        assert "0912345678" not in str(await notify.notifications())


async def test_quiet_hours_hold_sms_until_morning_with_a_fixed_clock(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = make_config(
        webhooks={"sms": {"url": f"http://127.0.0.1:{port}/hook", "needs_phone": True}},
        preferences={"residents": ["sms", "email"]},
    )
    night = datetime(2025, 3, 3, 22, 30, tzinfo=VN)
    clock = FixedClock(night.astimezone(UTC))
    pid = uuid.uuid4()
    settings = make_settings(nats_url, sqlite_url, tmp_path)
    async with (
        webhook_receiver(port) as receiver,
        fake_intake(nats_url) as intake,
        running_notify(settings, config=config, clock=clock) as notify,
    ):
        intake.contacts[str(pid)] = resident(phone="0912345678")
        await notify.publish(resolved(pid, at=clock.now()))
        # The member's email is not held: email wakes nobody.
        await notify.publish(assigned(uuid.uuid4(), at=clock.now()))

        async def held() -> list[dict[str, Any]] | None:
            rows = await notify.notifications(channel="sms")
            return rows if rows and rows[0]["hold_reason"] == "quiet_hours" else None

        [row] = await eventually(held, what="the SMS held for the night")
        assert row["status"] == "queued"
        assert row["attempts"] == 0
        morning = datetime(2025, 3, 4, 7, 0, tzinfo=VN)
        assert datetime.fromisoformat(row["next_attempt_at"]) == morning

        async def member_mailed() -> bool:
            return len(notify.mailbox()) == 1

        await eventually(member_mailed, what="the member's email at night")
        assert receiver.hits == 0

        clock.set(morning.astimezone(UTC) - timedelta(minutes=1))
        assert await notify.app.state.delivery.deliver_due() == 0
        clock.set(morning.astimezone(UTC))
        notify.wake()

        async def delivered() -> bool:
            return len(receiver.accepted()) == 1

        await eventually(delivered, what="sent at seven")
        [sent] = await notify.notifications(status="sent", channel="sms")
        assert sent["attempts"] == 1
        assert datetime.fromisoformat(sent["sent_at"]) == morning


async def test_ten_cases_in_five_minutes_make_one_message(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    start = datetime(2025, 3, 3, 9, 0, tzinfo=VN).astimezone(UTC)
    clock = FixedClock(start)
    config = make_config(batching={"window_minutes": 5, "templates": ["case_assigned"]})
    settings = make_settings(nats_url, database_url, tmp_path)
    cases = [uuid.uuid4() for _ in range(10)]
    async with (
        fake_intake(nats_url),
        running_notify(settings, config=config, clock=clock) as notify,
    ):

        async def assignments(status: str | None = None) -> list[dict[str, Any]]:
            rows = await notify.notifications(status, channel="email")
            return [r for r in rows if r["template"] == "case_assigned"]

        for n, pid in enumerate(cases):
            await notify.publish(submitted(pid, f"PA-{n:02d}", at=clock.now()))

        async def references_known() -> bool:
            return all([await notify.timeline(pid) for pid in cases])

        await eventually(references_known, what="the submissions are in")
        for n, pid in enumerate(cases):
            clock.set(start + timedelta(seconds=25 * n))
            await notify.publish(assigned(pid, at=clock.now()))

            async def queued(count: int = n + 1) -> bool:
                return len(await assignments()) == count

            await eventually(queued, what=f"assignment {n + 1} queued")
        rows = await assignments()
        assert {r["hold_reason"] for r in rows} == {"batch"}
        released = {datetime.fromisoformat(r["next_attempt_at"]) for r in rows}
        assert released == {start + timedelta(minutes=5)}
        clock.set(start + timedelta(minutes=5) - timedelta(seconds=1))
        assert await notify.app.state.delivery.deliver_due() == 0
        assert notify.mailbox() == []

        clock.set(start + timedelta(minutes=5))
        notify.wake()

        async def one_mail() -> bool:
            return len(await assignments("sent")) == 10

        await eventually(one_mail, what="the batch sent")
        [mail] = notify.mailbox()
        assert "10 phản ánh mới giao cho bạn / 10 new cases assigned to you" in mail["Subject"]
        text = mail.get_body(("plain",))
        assert text is not None
        for n in range(10):
            assert f"PA-{n:02d}" in text.get_content()
        # In the workspace each case is its own line.
        inbox = await notify.http.get("/api/v1/inbox", headers=token("member", "m-lan"))
        assert inbox.json()["unread"] == 10

        # The window has closed: the next case opens a new batch, a message on its own.
        late = uuid.uuid4()
        clock.set(start + timedelta(minutes=6))
        await notify.publish(assigned(late, at=clock.now()))

        async def late_queued() -> bool:
            return len(await assignments()) == 11

        await eventually(late_queued, what="the late case queued")
        clock.set(start + timedelta(minutes=11))
        notify.wake()

        async def two_mails() -> bool:
            return len(notify.mailbox()) == 2

        await eventually(two_mails, what="the late case sent alone")
        subjects = sorted(m["Subject"] for m in notify.mailbox())
        assert any("New case assigned to you" in s for s in subjects)


async def test_in_app_inbox_with_unread_count(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, sqlite_url, tmp_path)
    async with running_notify(settings) as notify:
        pid = uuid.uuid4()
        await notify.publish(submitted(pid, "PA-7"))
        await eventually(lambda: notify.timeline(pid), what="submitted")
        await notify.publish(assigned(pid))
        await notify.publish(assigned(uuid.uuid4(), "m-tai", email="tai@example.org"))
        lan = token("member", "m-lan")

        async def one_unread() -> dict[str, Any] | None:
            body: dict[str, Any] = (await notify.http.get("/api/v1/inbox", headers=lan)).json()
            return body if body["unread"] == 1 else None

        body = await eventually(one_unread, what="lan's in-app copy")
        assert body is not None
        [message] = body["messages"]
        assert message["title_vi"] == "Phản ánh mới giao cho bạn"
        assert message["title_en"] == "New case assigned to you"
        assert "PA-7" in message["body_vi"]
        assert message["link"].startswith("http://127.0.0.1:8001/cases/")
        count = await notify.http.get("/api/v1/inbox/unread-count", headers=lan)
        assert count.json() == {"unread": 1}
        # Nobody reads another member's inbox.
        tai = token("member", "m-tai")
        assert (
            await notify.http.post(f"/api/v1/inbox/{message['id']}/read", headers=tai)
        ).status_code == 404
        read = await notify.http.post(f"/api/v1/inbox/{message['id']}/read", headers=lan)
        assert read.json() == {"unread": 0}
        unread_only = await notify.http.get("/api/v1/inbox", params={"unread": True}, headers=lan)
        assert unread_only.json()["messages"] == []
        assert (await notify.http.post("/api/v1/inbox/read-all", headers=tai)).json() == {
            "unread": 0
        }
        assert (await notify.http.get("/api/v1/inbox")).status_code == 401


async def test_erased_or_unwilling_residents_are_never_contacted(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = make_config(
        webhooks={"sms": {"url": f"http://127.0.0.1:{port}/hook", "needs_phone": True}},
        preferences={"residents": ["sms", "email"]},
        quiet_hours={"default": {"channels": []}},
    )
    erased, unknown, withdrew = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    settings = make_settings(nats_url, database_url, tmp_path)
    async with (
        webhook_receiver(port) as receiver,
        fake_intake(nats_url) as intake,
        running_notify(settings, config=config) as notify,
    ):
        intake.contacts[str(erased)] = {"found": True, "erased": True}
        intake.contacts[str(withdrew)] = resident(phone="0987654321", wants_updates=False)
        for pid in (erased, unknown, withdrew):
            await notify.publish(resolved(pid))

        async def three_skipped() -> list[dict[str, Any]] | None:
            rows = await notify.notifications(status="skipped")
            return rows if len(rows) == 3 else None

        rows = await eventually(three_skipped, what="three skipped")
        assert rows is not None
        # The first channel decided "never": no fallback to email was queued.
        assert {r["channel"] for r in rows} == {"sms"}
        assert len(await notify.notifications()) == 3
        assert receiver.hits == 0
        assert notify.mailbox() == []

    engine = create_engine(settings.database_url)
    try:
        meta = MetaData()
        async with engine.connect() as conn:
            await conn.run_sync(meta.reflect)
            for table in meta.sorted_tables:
                dump = repr((await conn.execute(select(table))).all())
                assert "0987654321" not in dump, table.name
            statuses = (await conn.execute(select(notifications.c.status))).scalars().all()
            assert set(statuses) == {"skipped"}
    finally:
        await engine.dispose()


async def test_a_recovered_link_goes_only_to_the_contact_the_resident_gave(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    """Even to a resident who asked for no progress messages: they asked for this one. Without
    a recent request (intake answers no `recovery`), nothing is sent."""
    asked, stale = uuid.uuid4(), uuid.uuid4()
    settings = make_settings(nats_url, database_url, tmp_path)
    recovered = "http://127.0.0.1:8000/track/recovered"
    async with (
        fake_intake(nats_url) as intake,
        running_notify(settings, config=make_config()) as notify,
    ):
        intake.contacts[str(asked)] = resident(
            phone="0987654321",
            wants_updates=False,
            recovery={"email": "binh@example.org", "tracking_url": recovered},
        )
        intake.contacts[str(stale)] = resident()
        for pid in (asked, stale):
            await notify.publish(
                TrackingLinkRequested.new(producer="intake", petition_id=pid, channel="email")
            )

        async def settled() -> list[dict[str, Any]] | None:
            rows = await notify.notifications()
            done = [r for r in rows if r["status"] in ("sent", "skipped")]
            return done if len(done) == 2 else None

        rows = await eventually(settled, what="both link requests settled")
        assert rows is not None
        by_petition = {r["petition_id"]: r["status"] for r in rows}
        assert by_petition == {str(asked): "sent", str(stale): "skipped"}
        [mail] = notify.mailbox()
        assert mail["To"].addresses[0].addr_spec == "binh@example.org"
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert recovered in text
        assert "liên kết theo dõi" in text
        assert [r for r in intake.requests if r.get("recover_links")]


async def test_reminders_find_the_members_address_in_routing(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, sqlite_url, tmp_path)
    pid = uuid.uuid4()
    async with fake_routing(nats_url) as routing, running_notify(settings) as notify:
        routing.add("m-lan", "Nguyễn Thị Lan", "khom", email="lan.work@example.org")
        await notify.publish(submitted(pid, "PA-5"))
        await eventually(lambda: notify.timeline(pid), what="submitted")
        await notify.publish(
            CaseReminderDue.new(
                producer="routing",
                petition_id=pid,
                case_id=uuid.uuid4(),
                member_id="m-lan",
                rung=0,
                kind="holder",
                fraction=0.75,
                due_at=datetime(2025, 3, 6, 2, 0, tzinfo=UTC),
            )
        )

        async def mailed() -> bool:
            return len(notify.mailbox()) == 1

        await eventually(mailed, what="the reminder")
        [mail] = notify.mailbox()
        assert mail["To"] == "lan.work@example.org"
        assert "Sắp đến hạn xử lý / Deadline approaching" in mail["Subject"]
        plain = mail.get_body(("plain",))
        assert plain is not None
        assert "Kính gửi Nguyễn Thị Lan" in plain.get_content()
        assert "06/03/2025 09:00" in plain.get_content()
        assert routing.requests == [{"member_ids": ["m-lan"]}]


async def test_meeting_digest_before_the_meeting_by_email_in_app_and_printable(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    unit = "my-hoa-hung-my-khanh-2"
    config = make_config(
        meetings={
            unit: {
                "name": "Chi bộ ấp Mỹ Khánh 2",
                "day_of_month": 5,
                "at": "19:30",
                "digest_hours_before": 24,
            }
        }
    )
    clock = FixedClock(datetime(2025, 3, 4, 12, 0, tzinfo=VN).astimezone(UTC))
    settings = make_settings(nats_url, database_url, tmp_path)
    open_case, overdue_case, other_unit = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with (
        fake_routing(nats_url) as routing,
        running_notify(settings, config=config, clock=clock) as notify,
    ):
        routing.add("m-hoa", "Lê Thị Hoa", unit, email="hoa@example.org")
        routing.add("m-nam", "Phạm Văn Nam", unit, email="nam@example.org")
        routing.add("m-lead", "Bùi Bí Thư", unit, email="lead@example.org", role="leader")
        routing.add("m-khac", "Người Khác", "other", email="khac@example.org")
        earlier = clock.now() - timedelta(days=4)
        for pid, ref, member, u, days in (
            (open_case, "PA-A", "m-hoa", unit, 10),
            (overdue_case, "PA-B", "m-nam", unit, 3),
            (other_unit, "PA-C", "m-khac", "other", 3),
        ):
            await notify.publish(submitted(pid, ref, unit=u, at=earlier))
            await notify.publish(
                assigned(pid, member, email=None, at=earlier, unit=u, due=timedelta(days=days))
            )

        async def facts_in() -> bool:
            rows = await notify.notifications(channel="in_app")
            return len(rows) == 3

        await eventually(facts_in, what="three assignments taken in")
        scheduler = notify.app.state.scheduler
        # 12:00 on the 4th: the 19:30 meeting on the 5th is more than a day away.
        assert await scheduler.tick() == []
        clock.set(datetime(2025, 3, 4, 19, 30, tzinfo=VN).astimezone(UTC))
        [digest_id] = await scheduler.tick()
        assert await scheduler.tick() == [], "one digest per meeting"

        async def mailed() -> list[Any] | None:
            mails = [m for m in notify.mailbox() if "Tổng hợp trước cuộc họp" in m["Subject"]]
            return mails if len(mails) == 3 else None

        mails = await eventually(mailed, what="a digest for each member of the unit")
        assert mails is not None

        def text_to(address: str) -> str:
            [mail] = [m for m in mails if m["To"] == address]
            plain = mail.get_body(("plain",))
            assert plain is not None
            return str(plain.get_content())

        # The unit's leader reads all of it.
        text = text_to("lead@example.org")
        assert "Lê Thị Hoa: 1 đang xử lý, 0 quá hạn" in text
        assert "Phạm Văn Nam: 1 đang xử lý, 1 quá hạn" in text
        assert "! quá hạn PA-B" in text
        assert f"/digests/{digest_id}" in text
        assert "PA-C" not in text
        # A member reads their own line only: a unit-mate's case is not theirs to see.
        hoa = text_to("hoa@example.org")
        assert "Lê Thị Hoa: 1 đang xử lý, 0 quá hạn" in hoa
        assert "Phạm Văn Nam" not in hoa
        assert "PA-B" not in hoa
        assert f"/digests/{digest_id}" in hoa
        nam = text_to("nam@example.org")
        assert "! quá hạn PA-B" in nam
        assert "Lê Thị Hoa" not in nam

        # The unit's leader sees its digest; someone of another unit is told there is none.
        leader = session("leader", "m-lead", unit_id=unit)
        outsider = session("leader", "m-khac", unit_id="other")
        assert (await notify.http.get(f"/digests/{digest_id}")).status_code == 303
        assert (await notify.http.get(f"/digests/{digest_id}", cookies=outsider)).status_code == 404
        page = await notify.http.get(f"/digests/{digest_id}", cookies=leader)
        assert page.status_code == 200
        for expected in (
            "Chi bộ ấp Mỹ Khánh 2",
            "PA-A",
            "PA-B",
            "05/03/2025 19:30",
            "lệnh In của trình duyệt",
        ):
            assert expected in page.text
        assert "PA-C" not in page.text
        api = await notify.http.get(
            f"/api/v1/digests/{digest_id}", headers=token("member", "m-nam", unit_id=unit)
        )
        other = await notify.http.get(
            f"/api/v1/digests/{digest_id}", headers=token("leader", unit_id="other")
        )
        assert other.status_code == 404
        # Through the API too, a member gets their own line and its totals.
        assert api.json()["totals"] == {"open": 1, "overdue": 1, "escalated": 0, "resolved": 0}
        assert [m["member_id"] for m in api.json()["members"]] == ["m-nam"]
        whole = await notify.http.get(
            f"/api/v1/digests/{digest_id}", headers=token("leader", "m-lead", unit_id=unit)
        )
        assert whole.json()["totals"] == {"open": 2, "overdue": 1, "escalated": 0, "resolved": 0}
        inbox = await notify.http.get("/api/v1/inbox", headers=token("member", "m-hoa"))
        titles = [m["title_en"] for m in inbox.json()["messages"]]
        assert any(t.startswith("Digest before the Chi bộ ấp Mỹ Khánh 2 meeting") for t in titles)
        preview = await notify.http.get(f"/units/{unit}/digest", cookies=leader)
        assert preview.status_code == 200
        assert "(xem trước)" in preview.text
        assert (await notify.http.get(f"/units/{unit}/digest", cookies=outsider)).status_code == 404
        assert (await notify.http.get("/units/nowhere/digest", cookies=leader)).status_code == 404
