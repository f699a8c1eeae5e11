"""The organisation file: the demo one loads; a broken one says where and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.org import DEMO_ORG_FILE, OrgFileError, import_org, load_org_file
from services.routing.sessions import Sessions
from services.routing.signin import staff_of
from shared.auth import Staff
from shared.db import create_engine
from shared.migrate import upgrade_async

MIGRATIONS = Path(__file__).parents[2] / "services" / "routing" / "migrations"

GOOD = """\
units:
  - id: ward
    name: Phường
    kind: ward
  - id: hamlet
    parent: ward
    name: Ấp
    kind: hamlet
categories:
  - id: other
    name_vi: Khác
    name_en: Other
members:
  - username: leader
    name: Trưởng ấp
    unit: hamlet
    role: leader
    password: secret-one
  - username: an
    name: Nguyễn Văn An
    unit: hamlet
    role: member
    categories: [other]
    password: secret-two
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_file_has_the_agreed_shape() -> None:
    org = load_org_file(DEMO_ORG_FILE)
    units = {u.id: u for u in org.units}
    assert units["my-hoa-hung-my-khanh-2"].parent == "my-hoa-hung"
    assert units["my-thoi-thoi-an-a-to-4"].parent == "my-thoi-thoi-an-a"
    assert len(org.categories) == 8
    cell = [m for m in org.members if m.unit == "my-hoa-hung-my-khanh-2"]
    assert len(cell) == 30
    assert [m.username for m in cell if m.role == "leader"] == ["bithu.mykhanh2"]
    usernames = {m.username for m in org.members}
    assert {"admin", "danguy.mythoi", "danguy.myhoahung", "bithu.thoiana"} <= usernames


@pytest.mark.parametrize(
    ("old", "new", "line", "problem"),
    [
        ("    parent: ward\n", "    parent: nowhere\n", 6, "unknown parent unit 'nowhere'"),
        ("    categories: [other]\n", "    categories: [roads]\n", 23, "unknown category 'roads'"),
        ("  - username: an\n", "  - username: leader\n", 19, "duplicate username 'leader'"),
        ("    name: Trưởng ấp\n", "", 14, "missing field 'name'"),
        (
            "    unit: hamlet\n    role: member\n",
            "    unit: moon\n    role: member\n",
            21,
            "unknown unit 'moon'",
        ),
        ("    role: member\n", "    role: boss\n", 22, "role must be member, leader or admin"),
        ("    password: secret-two\n", "", 19, "exactly one of 'password' or 'password_hash'"),
    ],
)
def test_errors_name_file_line_and_problem(
    tmp_path: Path, old: str, new: str, line: int, problem: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(OrgFileError) as info:
        load_org_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    kind: hamlet\n", "    kind: [hamlet\n"))
    with pytest.raises(OrgFileError) as info:
        load_org_file(path)
    assert info.value.line is not None
    assert info.value.line >= 8
    assert "invalid YAML" in str(info.value)


async def test_import_upserts_and_production_refuses_the_demo_password(
    tmp_path: Path, sqlite_url: str
) -> None:
    await upgrade_async(MIGRATIONS, sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        path = write(tmp_path, GOOD)
        first = await import_org(engine, path, env="production")
        assert (first.members_created, first.members_updated) == (2, 0)
        again = await import_org(
            engine, write(tmp_path, GOOD.replace("Nguyễn Văn An", "Lê An")), env="production"
        )
        assert (again.members_created, again.members_updated) == (0, 2)
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(models.members)) == 2
            name = await conn.scalar(
                select(models.members.c.name).where(models.members.c.username == "an")
            )
        assert name == "Lê An"
        with pytest.raises(OrgFileError, match="demo password"):
            await import_org(engine, DEMO_ORG_FILE, env="production")
        demo = await import_org(engine, DEMO_ORG_FILE, env="development")
        assert demo.members == 46
    finally:
        await engine.dispose()


async def test_a_reimport_ends_only_the_sessions_of_people_it_changes(
    tmp_path: Path, database_url: str
) -> None:
    """Same file again: nobody is signed out (the clear-text password still matches its hash,
    so the hash is kept). A new name neither. Another role, another unit, deactivation or a new
    password: that person's sessions end, with the reason."""
    await upgrade_async(MIGRATIONS, database_url)
    engine = create_engine(database_url)
    s = models.staff_sessions
    try:
        await import_org(engine, write(tmp_path, GOOD), env="test")
        sessions = Sessions(engine, secret=lambda: "k" * 32, announcer=None)  # type: ignore[arg-type]
        leader = await sessions.open(await staff(engine, "leader"))
        an = await sessions.open(await staff(engine, "an"))
        renamed = GOOD.replace("Nguyễn Văn An", "Lê An")
        await import_org(engine, write(tmp_path, renamed), env="test")
        assert await sessions.is_open(leader.staff)
        assert await sessions.is_open(an.staff)

        changes = {
            "role: leader": ("role: member\n    categories: [other]", "role_changed"),
            "unit: hamlet\n    role: leader": ("unit: ward\n    role: leader", "role_changed"),
            "password: secret-one": ("password: secret-three", "password_changed"),
            "    password: secret-one\n": (
                "    password: secret-one\n    active: false\n",
                "deactivated",
            ),
        }
        for before, (after, reason) in changes.items():
            leader = await sessions.open(await staff(engine, "leader"))
            await import_org(engine, write(tmp_path, renamed.replace(before, after)), env="test")
            assert not await sessions.is_open(leader.staff), reason
            assert await sessions.refresh(leader.refresh_token) is None
            async with engine.connect() as conn:
                why = await conn.scalar(
                    select(s.c.revoked_reason).where(s.c.id == leader.staff.session_id)
                )
            assert why == reason
            await import_org(engine, write(tmp_path, renamed), env="test")
        assert await sessions.is_open(an.staff)
    finally:
        await engine.dispose()


async def staff(engine: AsyncEngine, username: str) -> Staff:
    m = models.members
    async with engine.connect() as conn:
        row = (await conn.execute(select(m).where(m.c.username == username))).mappings().one()
    return staff_of(row, {})
