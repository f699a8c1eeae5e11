"""Who sees what in notify: the one scope rule (`shared.scope`: administrators, those who held
the petition, leaders of its unit or a unit above it; 404 for anyone else), pages behind
routing's sign-in, statistics for those who may see every petition they count, units shown by
name and added up with the units below them. `tests/infra/test_scope_table.py` walks the same
rule through every staff endpoint of the three services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.events import CaseAssigned, CaseEscalated, PetitionSubmitted
from shared.webkit.pages import linkify
from tests.support import eventually

from .conftest import (
    FakeRouting,
    fake_intake,
    fake_routing,
    make_settings,
    running_notify,
    session,
    token,
)

WARD, HAMLET, GROUP, OTHER = "phuong-my-thoi", "khom-thoi-an-a", "to-2", "khom-b"
NOW = datetime.now(UTC).replace(microsecond=0)


def tree(routing: FakeRouting) -> None:
    routing.add_unit(WARD, "Phường Mỹ Thới")
    routing.add_unit(HAMLET, "Khóm Thới An A", WARD)
    routing.add_unit(GROUP, "Tổ 2", HAMLET)
    routing.add_unit(OTHER, "Khóm B", WARD)


def submitted(pid: uuid.UUID, unit: str, ref: str) -> PetitionSubmitted:
    return PetitionSubmitted.new(
        producer="intake",
        petition_id=pid,
        occurred_at=NOW - timedelta(hours=2),
        reference=ref,
        unit_id=unit,
        category_id="roads",
        title=f"Đèn đường hỏng {ref}",
        description="Đèn không sáng",
    )


def assigned(pid: uuid.UUID, unit: str, member: str, *, rung: int = 0) -> CaseAssigned:
    return CaseAssigned.new(
        producer="routing",
        petition_id=pid,
        occurred_at=NOW - timedelta(hours=2 - rung, minutes=-1),
        case_id=uuid.uuid4(),
        rung=rung,
        unit_id=unit,
        member_id=member,
        member_username=member,
        member_name=member.title(),
        member_email="",
        due_at=NOW + timedelta(days=3),
    )


def escalated(pid: uuid.UUID, from_member: str) -> CaseEscalated:
    return CaseEscalated.new(
        producer="routing",
        petition_id=pid,
        occurred_at=NOW - timedelta(hours=1, minutes=30),
        case_id=uuid.uuid4(),
        from_rung=0,
        to_rung=2,
        reason="leader_decision",
        from_member_id=from_member,
    )


async def test_a_petition_is_seen_by_its_holders_its_units_leaders_and_administrators(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    settings = make_settings(nats_url, database_url, tmp_path)
    async with (
        fake_intake(nats_url),
        fake_routing(nats_url) as routing,
        running_notify(settings) as notify,
    ):
        tree(routing)
        # Ours: from a resident of tổ 2, held by m-lan (who serves another unit, khóm B),
        # then escalated by her to the ward, where m-ward holds it.
        for event in (
            submitted(ours, GROUP, "PA-OURS"),
            assigned(ours, OTHER, "m-lan"),
            escalated(ours, "m-lan"),
            assigned(ours, WARD, "m-ward", rung=2),
            submitted(theirs, OTHER, "PA-THEIRS"),
        ):
            await notify.publish(event)

        async def taken_in() -> bool:
            return notify.app.state.runtime.consumers.stats.handled == 5

        await eventually(taken_in, what="every event taken in")

        async def status(headers: dict[str, str], pid: uuid.UUID = ours) -> int:
            response = await notify.http.get(f"/api/v1/petitions/{pid}/timeline", headers=headers)
            return response.status_code

        hamlet_leader = token("leader", "m-hamlet", unit_id=HAMLET, units=(HAMLET, GROUP))
        ward_leader = token("leader", "m-ward-lead", unit_id=WARD, units=(WARD, HAMLET, GROUP))
        group_member = token("member", "m-group", unit_id=GROUP)
        other_member = token("member", "m-b", unit_id=OTHER)
        nobody = token("member", "m-x", unit_id="elsewhere")
        lan = token("member", "m-lan", unit_id="elsewhere")
        assert await status(token("admin", "admin", unit_id=WARD, units=())) == 200
        assert await status(hamlet_leader) == 200  # the leader of the parent unit
        assert await status(ward_leader) == 200
        assert await status(lan) == 200  # she held it once
        assert await status(token("member", "m-ward", unit_id="elsewhere")) == 200
        # A member of the resident's unit does not lead it and never held it: routing hides
        # it from them, and so does notify (it once showed it to the whole unit).
        assert await status(group_member) == 404
        # Nor does holding it at a rung of khóm B open it to khóm B's members or leader.
        assert await status(other_member) == 404
        assert await status(token("leader", "m-b-lead", unit_id=OTHER, units=(OTHER,))) == 404
        # Someone of an unrelated unit is told it does not exist, as for an unknown id.
        assert await status(nobody) == 404
        assert await status(nobody, uuid.uuid4()) == 404
        assert await status(hamlet_leader, theirs) == 404
        stats = await notify.http.get(f"/api/v1/stats/petitions/{ours}", headers=nobody)
        assert stats.status_code == 404

        # Pages: the same rule, with the session cookie.
        outsider = session("member", "m-x", unit_id="elsewhere")
        leader = session("leader", "m-hamlet", unit_id=HAMLET, units=(HAMLET, GROUP))
        assert (await notify.http.get(f"/petitions/{ours}", cookies=outsider)).status_code == 404
        page = await notify.http.get(f"/petitions/{ours}", cookies=leader)
        assert page.status_code == 200
        assert "PA-OURS" in page.text
        dashboard = (await notify.http.get("/", cookies=leader)).text
        assert "PA-OURS" in dashboard
        assert "PA-THEIRS" not in dashboard
        assert "undeliverable" not in dashboard, "the dead-letter count is for administrators"
        empty = (await notify.http.get("/", cookies=outsider)).text
        assert "PA-OURS" not in empty
        assert "PA-THEIRS" not in empty
        mate = session("member", "m-group", unit_id=GROUP)
        assert (await notify.http.get(f"/petitions/{ours}", cookies=mate)).status_code == 404
        assert "PA-OURS" not in (await notify.http.get("/", cookies=mate)).text
        held = (await notify.http.get("/", cookies=session("member", "m-lan", unit_id=OTHER))).text
        assert "PA-OURS" in held
        everything = (await notify.http.get("/", cookies=session("admin", units=()))).text
        assert "PA-OURS" in everything
        assert "PA-THEIRS" in everything


async def test_pages_send_the_browser_to_routing_to_sign_in(
    nats_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        nats_url,
        sqlite_url,
        tmp_path,
        routing_url="https://routing.example/",
        notify_url="https://notify.example",
    )
    pid = uuid.uuid4()
    async with running_notify(settings) as notify:
        for path, quoted in (
            ("/?from=2025-03-01", "%2F%3Ffrom%3D2025-03-01"),
            (f"/petitions/{pid}", f"%2Fpetitions%2F{pid}"),
            ("/digests/1", "%2Fdigests%2F1"),
            ("/units/to-2/digest", "%2Funits%2Fto-2%2Fdigest"),
        ):
            for cookies in ({}, {"petitions_staff": "forged"}):
                response = await notify.http.get(path, cookies=cookies)
                assert response.status_code == 303, (path, response.text)
                assert response.headers["location"] == (
                    f"https://routing.example/signin?next=https%3A%2F%2Fnotify.example{quoted}"
                )
        signed_in = await notify.http.get("/", cookies=session("leader", unit_id=GROUP))
        assert signed_in.status_code == 200
        assert "Bảng điều khiển" in signed_in.text
        # The JSON API still answers 401 (a script is not a browser to send anywhere).
        assert (await notify.http.get(f"/api/v1/petitions/{pid}/timeline")).status_code == 401
        # The demo mailbox stays open in development, and says so.
        mailbox = await notify.http.get("/mail")
        assert mailbox.status_code == 200
        assert "không cần đăng nhập" in mailbox.text


async def test_statistics_are_scoped_and_units_add_up_with_the_units_below(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(nats_url, database_url, tmp_path)
    petitions = [
        (uuid.uuid4(), GROUP, "m-group"),
        (uuid.uuid4(), GROUP, "m-group"),
        (uuid.uuid4(), HAMLET, "m-hamlet"),
        (uuid.uuid4(), OTHER, "m-b"),
    ]
    async with (
        fake_intake(nats_url),
        fake_routing(nats_url) as routing,
        running_notify(settings) as notify,
    ):
        tree(routing)
        routing.add("m-group", "Lê Văn Tổ", GROUP)
        routing.add("m-b", "Trần Thị B", OTHER)
        for i, (pid, unit, member) in enumerate(petitions):
            await notify.publish(submitted(pid, unit, f"PA-{i}"))
            await notify.publish(assigned(pid, unit, member))
        admin = token("admin", "admin", units=())

        async def counted() -> bool:
            response = await notify.http.get(
                f"/api/v1/stats/units/{WARD}", params={"sub_units": "true"}, headers=admin
            )
            return response.status_code == 200 and response.json()["received"] == 4

        await eventually(counted, what="every petition counted")

        hamlet_leader = token("leader", "m-hamlet", unit_id=HAMLET, units=(HAMLET, GROUP))

        async def unit(unit_id: str, headers: dict[str, str], **params: str) -> Any:
            return await notify.http.get(
                f"/api/v1/stats/units/{unit_id}", params=params, headers=headers
            )

        alone = (await unit(HAMLET, hamlet_leader)).json()
        assert (alone["received"], alone["units"]) == (1, [HAMLET])
        below = (await unit(HAMLET, hamlet_leader, sub_units="true")).json()
        assert (below["received"], below["assigned"]) == (3, 3)
        assert sorted(below["units"]) == sorted([HAMLET, GROUP])
        assert (await unit(GROUP, hamlet_leader)).json()["received"] == 2
        # Not the sibling khóm, nor the ward above.
        assert (await unit(OTHER, hamlet_leader)).status_code == 403
        assert (await unit(WARD, hamlet_leader, sub_units="true")).status_code == 403
        # A unit's figures count petitions of unit-mates a member may not see: for leaders.
        group_member = token("member", "m-group", unit_id=GROUP)
        assert (await unit(GROUP, group_member)).status_code == 403
        assert (await unit(HAMLET, group_member)).status_code == 403

        async def member(member_id: str, headers: dict[str, str]) -> int:
            response = await notify.http.get(f"/api/v1/stats/members/{member_id}", headers=headers)
            return response.status_code

        assert await member("m-group", group_member) == 200  # their own
        assert await member("m-group", hamlet_leader) == 200  # a leader above their unit
        assert await member("m-b", hamlet_leader) == 403  # a leader elsewhere
        assert await member("m-b", group_member) == 403
        assert await member("m-b", admin) == 200

        # The dashboard names units and, by default, adds each up with those below it.
        leader = session("leader", "m-hamlet", unit_id=HAMLET, units=(HAMLET, GROUP))
        page = (await notify.http.get("/", cookies=leader)).text
        assert "Khóm Thới An A" in page
        assert "Tổ 2" in page
        assert "Khóm B" not in page
        assert "Phường Mỹ Thới" not in page
        assert f">{HAMLET}<" not in page
        ward = (await notify.http.get("/", cookies=session("admin", units=()))).text
        assert "Phường Mỹ Thới" in ward
        assert "Khóm B" in ward
        assert ward.index("Phường Mỹ Thới") < ward.index("Khóm Thới An A") < ward.index("Tổ 2")


def test_linkify_escapes_everything_and_links_only_web_addresses() -> None:
    text = (
        'Xem <b>tại</b> https://intake.example/track/abc?x=1&y="2". '
        "javascript:alert(1) http://a.example/đường)"
    )
    html = str(linkify(text))
    assert "<b>" not in html
    assert "&lt;b&gt;tại&lt;/b&gt;" in html
    assert (
        '<a href="https://intake.example/track/abc?x=1&amp;y=" rel="noopener noreferrer">'
        "https://intake.example/track/abc?x=1&amp;y=</a>&#34;2&#34;." in html
    )
    assert 'href="javascript' not in html
    assert '<a href="http://a.example/đường" rel="noopener noreferrer">' in html
    assert html.endswith("</a>)")


async def test_the_migrations_give_petitions_already_on_timelines_the_scope_rules_facts(
    database_url: str,
) -> None:
    import asyncio

    from sqlalchemy import insert, select

    from services.notify.app import MIGRATIONS_DIR
    from services.notify.models import petition_access, timeline
    from shared.db import create_engine
    from shared.migrate import upgrade

    await asyncio.to_thread(upgrade, MIGRATIONS_DIR, database_url, "0002")
    pid = uuid.uuid4()
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for event in (
                submitted(pid, GROUP, "PA-OLD"),
                assigned(pid, OTHER, "m-lan"),
                escalated(pid, "m-lan"),
                assigned(pid, WARD, "m-ward", rung=2),
            ):
                await conn.execute(
                    insert(timeline).values(
                        petition_id=str(pid),
                        event_id=str(event.event_id),
                        subject=event.subject,
                        kind=event.subject.split(".")[1],
                        occurred_at=event.occurred_at,
                        summary_vi="",
                        summary_en="",
                        payload=event.model_dump_json(),
                    )
                )
        await asyncio.to_thread(upgrade, MIGRATIONS_DIR, database_url, "head")
        async with engine.connect() as conn:
            rows = (await conn.execute(select(petition_access))).all()
        # The petition's own unit and everyone who held it; not the units of its rungs.
        assert sorted((p, s, r) for p, s, r in rows) == sorted(
            [
                (str(pid), "unit", GROUP),
                (str(pid), "member", "m-lan"),
                (str(pid), "member", "m-ward"),
            ]
        )
    finally:
        await engine.dispose()
