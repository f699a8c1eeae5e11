"""notify running against a real nats-server and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, select, text

from services.notify.models import notifications, timeline
from shared.db import create_engine
from shared.events import (
    CaseAssigned,
    CaseNoteAdded,
    CaseResolved,
    PetitionSubmitted,
)
from shared.messaging import Consumers
from tests.support import eventually, free_port

from .conftest import fake_intake, make_settings, running_notify, session, smtp_server, token

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def submitted(pid: uuid.UUID, *, title: str = "Đèn đường hỏng") -> PetitionSubmitted:
    return PetitionSubmitted.new(
        producer="intake",
        petition_id=pid,
        occurred_at=T0,
        reference="PA-2025-000123",
        unit_id="khom-thoi-an-a",
        category_id="roads",
        title=title,
        description="Đèn ở hẻm 12 không sáng",
        wants_updates=True,
    )


def assigned(pid: uuid.UUID, *, email: str | None = "lan@example.org") -> CaseAssigned:
    return CaseAssigned.new(
        producer="routing",
        petition_id=pid,
        occurred_at=T0 + timedelta(minutes=1),
        case_id=uuid.uuid4(),
        rung=0,
        unit_id="khom-thoi-an-a",
        member_id="m-lan",
        member_username="lan",
        member_name="Nguyễn Thị Lan",
        member_email=email,
        due_at=T0 + timedelta(days=3),
    )


def resolved(pid: uuid.UUID) -> CaseResolved:
    return CaseResolved.new(
        producer="routing",
        petition_id=pid,
        occurred_at=T0 + timedelta(hours=2),
        case_id=uuid.uuid4(),
        member_id="m-lan",
        explanation="Đã thay bóng đèn",
    )


def contact(
    email: str | None = "binh@example.org", *, wants_updates: bool = True
) -> dict[str, object]:
    return {
        "found": True,
        "name": "Trần Văn Bình",
        "email": email,
        "phone": "0912345678",
        "language": "vi",
        "wants_updates": wants_updates,
        "tracking_url": "http://127.0.0.1:8000/track/tok-abc",
    }


async def test_assignment_mails_the_member_in_the_embedded_mailbox(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    pid = uuid.uuid4()
    async with running_notify(make_settings(nats_url, database_url, tmp_path)) as notify:
        await notify.publish(submitted(pid))
        await eventually(lambda: notify.timeline(pid), what="submitted on the timeline")
        await notify.publish(assigned(pid))

        async def one_mail() -> bool:
            return len(notify.mailbox()) == 1

        await eventually(one_mail, what="an .eml in the mailbox")
        [mail] = notify.mailbox()
        assert mail["To"] == "lan@example.org"
        assert (
            mail["Subject"]
            == "[Phản ánh PA-2025-000123] Phản ánh mới giao cho bạn / New case assigned to you"
        )
        assert mail["Message-ID"].endswith("@petitions.local>")
        plain = mail.get_body(("plain",))
        assert plain is not None
        assert "Đèn đường hỏng" in plain.get_content()
        [row] = await notify.notifications(status="sent", channel="email")
        assert (row["recipient_kind"], row["attempts"]) == ("member", 1)
        # The member's in-app copy is logged beside it.
        [in_app] = await notify.notifications(status="sent", channel="in_app")
        assert in_app["recipient_ref"] == "m-lan"
        assert not list(notify.mail_dir.glob(".*.tmp"))


async def test_resolution_mails_the_resident_with_the_tracking_link_and_keeps_no_contact(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    pid = uuid.uuid4()
    settings = make_settings(nats_url, database_url, tmp_path)
    async with fake_intake(nats_url) as intake, running_notify(settings) as notify:
        intake.contacts[str(pid)] = contact()
        await notify.publish(resolved(pid))

        async def one_mail() -> bool:
            return len(notify.mailbox()) == 1

        await eventually(one_mail, what="the resident's mail")
        [mail] = notify.mailbox()
        assert mail["To"] == "binh@example.org"
        assert "Đã được giải quyết / Resolved" in mail["Subject"]
        for part in ("plain", "html"):
            body = mail.get_body((part,))
            assert body is not None
            assert "http://127.0.0.1:8000/track/tok-abc" in body.get_content()
        # Asked for in the bulk form, once, for this one petition.
        assert intake.requests == [{"petition_ids": [str(pid)]}]

    # Nothing of the resident's contact is kept in notify's database.
    engine = create_engine(settings.database_url)
    try:
        meta = MetaData()
        async with engine.connect() as conn:
            await conn.run_sync(meta.reflect)
            for table in meta.sorted_tables:
                for row in (await conn.execute(select(table))).all():
                    dump = repr(tuple(row))
                    assert "binh@example.org" not in dump, table.name
                    assert "0912345678" not in dump, table.name
                    assert "Trần Văn Bình" not in dump, table.name
                    assert "tok-abc" not in dump, table.name
    finally:
        await engine.dispose()


async def test_a_redelivered_event_sends_exactly_one_email(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    pid = uuid.uuid4()
    event = assigned(pid)
    async with running_notify(make_settings(nats_url, database_url, tmp_path)) as notify:
        for _ in range(3):
            # Different message ids get past JetStream's de-duplication; the inbox must catch them.
            await notify.publish(event, msg_id=str(uuid.uuid4()))
        consumers: Consumers = notify.app.state.runtime.consumers

        async def all_seen() -> bool:
            return consumers.stats.handled + consumers.stats.duplicates >= 3

        await eventually(all_seen, what="three deliveries handled")

        async def sent() -> bool:
            return len(await notify.notifications(status="sent", channel="email")) == 1

        await eventually(sent, what="the notification sent")
        assert len(notify.mailbox()) == 1
        assert consumers.stats.duplicates == 2
        assert len(await notify.notifications(channel="email")) == 1
        assert len(await notify.notifications(channel="in_app")) == 1
        body = await notify.timeline(pid)
        assert body is not None
        assert len(body["events"]) == 1


async def test_residents_without_updates_or_address_are_skipped_not_failed(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    quiet, no_mail, unknown, member_without_mail = (uuid.uuid4() for _ in range(4))
    async with (
        fake_intake(nats_url) as intake,
        running_notify(make_settings(nats_url, sqlite_url, tmp_path)) as notify,
    ):
        intake.contacts[str(quiet)] = contact(wants_updates=False)
        intake.contacts[str(no_mail)] = contact(email=None)
        for pid in (quiet, no_mail, unknown):
            await notify.publish(resolved(pid))
        await notify.publish(assigned(member_without_mail, email=None))

        async def four_skipped() -> list[dict[str, Any]] | None:
            rows = await notify.notifications(status="skipped")
            return rows if len(rows) == 4 else None

        rows = await eventually(four_skipped, what="four skipped notifications")
        assert rows is not None
        reasons = {str(r["petition_id"]): str(r["last_error"]) for r in rows}
        assert "no updates" in reasons[str(quiet)]
        assert "no email" in reasons[str(no_mail)]
        assert "unknown to intake or erased" in reasons[str(unknown)]
        assert "no email" in reasons[str(member_without_mail)]
        assert notify.mailbox() == []


async def test_mail_goes_out_over_smtp(nats_url: str, database_url: str, tmp_path: Path) -> None:
    pid = uuid.uuid4()
    port = free_port()
    settings = make_settings(
        nats_url, database_url, tmp_path, smtp_host="127.0.0.1", smtp_port=port
    )
    async with smtp_server(port) as smtp, running_notify(settings) as notify:
        await notify.publish(assigned(pid))

        async def received() -> bool:
            return len(smtp.messages) == 1

        await eventually(received, what="the SMTP server got the mail")
        [(rcpt, mail)] = smtp.messages
        assert rcpt == ["lan@example.org"]
        assert mail.get_body(("html",)) is not None

        async def marked_sent() -> bool:
            return len(await notify.notifications(status="sent", channel="email")) == 1

        await eventually(marked_sent, what="marked sent")
        assert notify.mailbox() == []


async def test_smtp_down_at_first_is_retried_then_delivered_once(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    pid = uuid.uuid4()
    port = free_port()
    settings = make_settings(
        nats_url,
        database_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        delivery_max_attempts=50,
    )
    async with running_notify(settings) as notify:
        await notify.publish(assigned(pid))

        async def retrying() -> bool:
            rows = await notify.notifications(status="failed")
            return bool(rows) and int(rows[0]["attempts"]) >= 2

        await eventually(retrying, what="failed attempts recorded")
        [row] = await notify.notifications(status="failed")
        assert row["last_error"]
        assert "lan@example.org" not in row["last_error"]

        async with smtp_server(port) as smtp:

            async def sent() -> list[dict[str, Any]]:
                return await notify.notifications(status="sent", channel="email")

            [row] = await eventually(sent, what="delivered once the server is up")
            assert int(str(row["attempts"])) >= 3
            assert len(smtp.messages) == 1


async def test_dead_notifications_are_listed_for_admins_and_can_be_retried(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    pid = uuid.uuid4()
    port = free_port()
    settings = make_settings(
        nats_url,
        sqlite_url,
        tmp_path,
        smtp_host="127.0.0.1",
        smtp_port=port,
        delivery_max_attempts=2,
    )
    async with running_notify(settings) as notify:
        await notify.publish(assigned(pid))

        async def dead() -> list[dict[str, Any]]:
            return await notify.notifications(status="dead")

        [row] = await eventually(dead, what="parked after two attempts")
        assert row["attempts"] == 2
        forbidden = await notify.http.get(
            "/api/v1/notifications", params={"status": "dead"}, headers=token("member")
        )
        assert forbidden.status_code == 403
        async with smtp_server(port) as smtp:
            retried = await notify.http.post(
                f"/api/v1/notifications/{row['id']}/retry", headers=token("admin")
            )
            assert retried.status_code == 200, retried.text

            async def sent() -> bool:
                return len(smtp.messages) == 1

            await eventually(sent, what="sent after the retry")
        again = await notify.http.post(
            f"/api/v1/notifications/{row['id']}/retry", headers=token("admin")
        )
        assert again.status_code == 409
        missing = await notify.http.post(
            "/api/v1/notifications/999999/retry", headers=token("admin")
        )
        assert missing.status_code == 404


async def test_timeline_is_for_staff_and_lists_events_in_order_with_the_delivery_log(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    pid = uuid.uuid4()
    async with (
        fake_intake(nats_url) as intake,
        running_notify(make_settings(nats_url, database_url, tmp_path)) as notify,
    ):
        intake.contacts[str(pid)] = contact()
        note = CaseNoteAdded.new(
            producer="routing",
            petition_id=pid,
            occurred_at=T0 + timedelta(hours=1),
            case_id=uuid.uuid4(),
            member_id="m-lan",
            note="Đã gọi điện lực",
        )
        # Published out of order: the timeline orders by when things happened.
        for event in (resolved(pid), note, assigned(pid), submitted(pid)):
            await notify.publish(event)

        async def complete() -> dict[str, Any] | None:
            body = await notify.timeline(pid)
            if body is None or len(body["events"]) < 4:
                return None
            # The resident's receipt and resolution, the member's email and in-app copy.
            if [d["status"] for d in body["deliveries"]] != ["sent"] * 4:
                return None
            return body

        body = await eventually(complete, what="four events and two sent notifications")
        assert body is not None
        assert [e["kind"] for e in body["events"]] == [
            "submitted",
            "assigned",
            "note_added",
            "resolved",
        ]
        assert body["events"][3]["summary_vi"] == "Đã giải quyết: Đã thay bóng đèn"
        assert body["events"][3]["summary_en"] == "Resolved: Đã thay bóng đèn"
        deliveries = body["deliveries"]
        assert {d["recipient_kind"] for d in deliveries} == {"member", "resident"}
        assert "recipient_address" not in deliveries[0]
        assert "binh@example.org" not in str(body)

        unauthenticated = await notify.http.get(f"/api/v1/petitions/{pid}/timeline")
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"].startswith("application/problem+json")
        forged = await notify.http.get(
            f"/api/v1/petitions/{pid}/timeline", headers={"Authorization": "Bearer nope"}
        )
        assert forged.status_code == 401
        unknown = await notify.http.get(
            f"/api/v1/petitions/{uuid.uuid4()}/timeline", headers=token("member")
        )
        assert unknown.status_code == 404


async def test_overview_and_mailbox_pages(nats_url: str, sqlite_url: str, tmp_path: Path) -> None:
    pid = uuid.uuid4()
    async with running_notify(make_settings(nats_url, sqlite_url, tmp_path)) as notify:
        await notify.publish(submitted(pid, title="<script>alert(1)</script> Đèn hỏng"))
        await notify.publish(assigned(pid))

        async def mailed() -> bool:
            return len(notify.mailbox()) == 1

        await eventually(mailed, what="mail written")

        async def assigned_shown() -> str | None:
            page = await notify.http.get("/", cookies=session("admin"))
            return page.text if "Đã giao xử lý" in page.text else None

        page = await eventually(assigned_shown, what="the overview shows the latest status")
        assert page is not None
        assert "PA-2025-000123" in page
        english = await notify.http.get("/?lang=en", cookies=session("admin"))
        assert "Assigned" in english.text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;" in page
        # 01:01 UTC is 08:01 in Asia/Ho_Chi_Minh.
        assert "03/03/2025 08:01" in page

        # The demo mailbox is open (development only, as it says).
        box = await notify.http.get("/mail?lang=en")
        assert box.status_code == 200
        assert "Development only" in box.text
        assert "lan@example.org" in box.text
        [name] = [p.name for p in notify.mail_dir.glob("*.eml")]
        message = await notify.http.get(f"/mail/{name}")
        assert message.status_code == 200
        assert "Kính gửi Nguyễn Thị Lan" in message.text
        # A proportional font keeps Vietnamese diacritics in place; links are clickable.
        assert '<div class="mail-body">' in message.text
        assert "<pre>" not in message.text
        assert '<a href="http://127.0.0.1:8001/' in message.text
        raw = await notify.http.get(f"/mail/{name}/raw")
        assert raw.headers["content-type"].startswith("message/rfc822")
        assert (await notify.http.get("/mail/..%2Fetc%2Fpasswd")).status_code == 404
        assert (await notify.http.get("/readyz")).status_code == 200


async def test_migrations_match_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.notify.app import MIGRATIONS_DIR
    from services.notify.models import metadata
    from shared.migrate import upgrade_async

    await upgrade_async(MIGRATIONS_DIR, database_url)
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            assert diff == []
            assert await conn.scalar(select(text("count(*)")).select_from(timeline)) == 0
            assert await conn.scalar(select(text("count(*)")).select_from(notifications)) == 0
    finally:
        await engine.dispose()


async def test_migrations_go_down_to_0001_and_up_again(database_url: str) -> None:
    import asyncio

    from alembic import command

    from services.notify.app import MIGRATIONS_DIR
    from shared.migrate import alembic_config, upgrade_async

    await upgrade_async(MIGRATIONS_DIR, database_url)
    config = alembic_config(MIGRATIONS_DIR, database_url)
    await asyncio.to_thread(command.downgrade, config, "0001")
    engine = create_engine(database_url)
    try:
        meta = MetaData()
        async with engine.connect() as conn:
            await conn.run_sync(meta.reflect)
        assert "stats_daily" not in meta.tables
        assert "batch_key" not in meta.tables["notifications"].c
    finally:
        await engine.dispose()
    await upgrade_async(MIGRATIONS_DIR, database_url)


async def test_the_api_and_the_dashboard_answer_503_while_the_database_is_down(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, sqlite_url, tmp_path)
    async with running_notify(settings) as notify:
        runtime = notify.app.state.runtime
        real = runtime.engine
        runtime.engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/n")
        try:
            api = await notify.http.get(
                f"/api/v1/petitions/{uuid.uuid4()}/timeline", headers=token("admin")
            )
            page = await notify.http.get("/", cookies=session("admin"))
        finally:
            runtime.engine = real
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["retry-after"]
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
