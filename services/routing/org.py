"""The organisation file (YAML): units, categories and members, checked and imported.

Errors name the file, the line and the problem, so whoever edits the file can fix it. Import is
an upsert: a re-import updates units, categories and members and never touches cases.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.routing import models
from services.routing.assignment import ALL_CATEGORIES
from services.routing.sessions import revoke_member_sessions
from services.routing.yamlfile import Located, YamlFileError, read_mapping

DEMO_ORG_FILE = Path(__file__).with_name("demo_org.yaml")
DEMO_PASSWORD = "demo"  # noqa: S105 - the demo accounts' password, refused in production
ROLES = ("member", "leader", "admin")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class OrgFileError(YamlFileError):
    """An organisation file that cannot be imported; the message says where and why."""


class DemoPasswordRefused(ValueError):
    """Production with an account that still has the demo password."""


@dataclass(frozen=True)
class UnitSpec:
    id: str
    name: str
    kind: str
    parent: str | None
    line: int
    parent_line: int


@dataclass(frozen=True)
class CategorySpec:
    id: str
    name_vi: str
    name_en: str
    deadline_hours: tuple[int, ...]
    line: int


@dataclass(frozen=True)
class MemberSpec:
    id: str
    username: str
    name: str
    email: str | None
    unit: str
    role: str
    categories: tuple[str, ...]
    capacity: int
    password: str | None
    password_hash: str | None
    active: bool
    line: int


@dataclass(frozen=True)
class OrgConfig:
    path: Path
    units: tuple[UnitSpec, ...]
    categories: tuple[CategorySpec, ...]
    members: tuple[MemberSpec, ...]


@dataclass(frozen=True)
class OrgImportSummary:
    units: int
    categories: int
    members: int
    members_created: int
    members_updated: int


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, line: int | None, problem: str) -> OrgFileError:
        return OrgFileError(self.path, line, problem)

    def items(self, doc: Located, key: str) -> list[Located]:
        value = doc.get(key)
        if value is None:
            raise self.fail(doc.line, f"thiếu mục / missing section '{key}'")
        if not isinstance(value, list):
            raise self.fail(doc.line, f"'{key}' phải là danh sách / '{key}' must be a list")
        for item in value:
            if not isinstance(item, Located):
                raise self.fail(
                    doc.line,
                    f"mỗi mục của '{key}' phải là một bảng / each '{key}' entry must be a mapping",
                )
        return value

    def text(self, item: Located, key: str, *, required: bool = True) -> str | None:
        value = item.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(item.line, f"thiếu trường / missing field '{key}'")
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise self.fail(item.at(key), f"'{key}' phải là chuỗi / '{key}' must be text")
        return str(value).strip()

    def req(self, item: Located, key: str) -> str:
        value = self.text(item, key)
        assert value is not None
        return value


def load_org_file(path: Path) -> OrgConfig:
    """Read and check an organisation file; raises OrgFileError naming the file and line."""
    return _check(_Reader(path), read_mapping(path, error=OrgFileError))


def _check(r: _Reader, doc: Located) -> OrgConfig:
    units = _units(r, doc)
    categories = _categories(r, doc)
    members: dict[str, MemberSpec] = {}
    ids: set[str] = set()
    for item in r.items(doc, "members"):
        member = _member(r, item, units, categories, members, ids)
        members[member.username] = member
        ids.add(member.id)
    return OrgConfig(
        path=r.path,
        units=tuple(units.values()),
        categories=tuple(categories.values()),
        members=tuple(members.values()),
    )


def _units(r: _Reader, doc: Located) -> dict[str, UnitSpec]:
    """The area tree: unique ids, every parent known, no unit its own ancestor."""
    units: dict[str, UnitSpec] = {}
    for item in r.items(doc, "units"):
        uid = r.req(item, "id")
        if not _ID.match(uid):
            raise r.fail(item.at("id"), f"mã đơn vị không hợp lệ / invalid unit id '{uid}'")
        if uid in units:
            raise r.fail(item.at("id"), f"đơn vị trùng / duplicate unit '{uid}'")
        units[uid] = UnitSpec(
            id=uid,
            name=r.req(item, "name"),
            kind=r.req(item, "kind"),
            parent=r.text(item, "parent", required=False),
            line=item.line,
            parent_line=item.at("parent"),
        )
    for unit in units.values():
        if unit.parent is not None and unit.parent not in units:
            raise r.fail(
                unit.parent_line, f"đơn vị cha không tồn tại / unknown parent unit '{unit.parent}'"
            )
        seen = {unit.id}
        parent = unit.parent
        while parent is not None:
            if parent in seen:
                raise r.fail(unit.line, f"vòng lặp đơn vị cha / parent cycle at unit '{unit.id}'")
            seen.add(parent)
            parent = units[parent].parent
    return units


def _categories(r: _Reader, doc: Located) -> dict[str, CategorySpec]:
    """Categories with unique ids and positive deadline hours (one per rung, the last serving
    every higher rung)."""
    categories: dict[str, CategorySpec] = {}
    for item in r.items(doc, "categories"):
        cid = r.req(item, "id")
        if not _ID.match(cid):
            raise r.fail(item.at("id"), f"mã lĩnh vực không hợp lệ / invalid category id '{cid}'")
        if cid in categories:
            raise r.fail(item.at("id"), f"lĩnh vực trùng / duplicate category '{cid}'")
        hours = item.get("deadline_hours", [72])
        if isinstance(hours, int) and not isinstance(hours, bool):
            hours = [hours]
        if (
            not isinstance(hours, list)
            or not hours
            or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hours)
        ):
            raise r.fail(
                item.at("deadline_hours"),
                "'deadline_hours' phải là số giờ dương / must be positive hours (one per rung)",
            )
        categories[cid] = CategorySpec(
            id=cid,
            name_vi=r.req(item, "name_vi"),
            name_en=r.req(item, "name_en"),
            deadline_hours=tuple(hours),
            line=item.line,
        )
    return categories


def _member(
    r: _Reader,
    item: Located,
    units: dict[str, UnitSpec],
    categories: dict[str, CategorySpec],
    members: dict[str, MemberSpec],
    ids: set[str],
) -> MemberSpec:
    """One member: a unique lowercase username and id, a known unit and role, the categories
    they take, a capacity, and exactly one of a password or its hash."""
    username = r.req(item, "username")
    if not _USERNAME.match(username):
        raise r.fail(
            item.at("username"),
            f"tên đăng nhập chỉ gồm chữ thường không dấu / username must be lowercase ASCII: '{username}'",
        )
    if username in members:
        raise r.fail(item.at("username"), f"tên đăng nhập trùng / duplicate username '{username}'")
    mid = r.text(item, "id", required=False) or username
    if mid in ids:
        raise r.fail(item.at("id"), f"mã thành viên trùng / duplicate member id '{mid}'")
    unit_id = r.req(item, "unit")
    if unit_id not in units:
        raise r.fail(item.at("unit"), f"đơn vị không tồn tại / unknown unit '{unit_id}'")
    role = r.req(item, "role")
    if role not in ROLES:
        raise r.fail(
            item.at("role"),
            f"vai trò không hợp lệ / role must be member, leader or admin: '{role}'",
        )
    cats = _member_categories(r, item, role, categories)
    capacity = item.get("capacity", 10)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
        raise r.fail(
            item.at("capacity"), "'capacity' phải là số không âm / must be a whole number >= 0"
        )
    password = r.text(item, "password", required=False)
    password_hash = r.text(item, "password_hash", required=False)
    if (password is None) == (password_hash is None):
        raise r.fail(
            item.line,
            "cần đúng một trong 'password' hoặc 'password_hash' / give exactly one of 'password' or 'password_hash'",
        )
    active = item.get("active", True)
    if not isinstance(active, bool):
        raise r.fail(item.at("active"), "'active' phải là true/false / must be true or false")
    return MemberSpec(
        id=mid,
        username=username,
        name=r.req(item, "name"),
        email=r.text(item, "email", required=False),
        unit=unit_id,
        role=role,
        categories=cats,
        capacity=capacity,
        password=password,
        password_hash=password_hash,
        active=active,
        line=item.line,
    )


def _member_categories(
    r: _Reader, item: Located, role: str, categories: dict[str, CategorySpec]
) -> tuple[str, ...]:
    """A list of known category ids, or "all" (the default for leaders and administrators)."""
    raw_categories = item.get("categories", "all" if role != "member" else None)
    if raw_categories == "all":
        return (ALL_CATEGORIES,)
    if isinstance(raw_categories, list) and raw_categories:
        for c in raw_categories:
            if c not in categories:
                raise r.fail(
                    item.at("categories"), f"lĩnh vực không tồn tại / unknown category '{c}'"
                )
        return tuple(str(c) for c in raw_categories)
    raise r.fail(
        item.line,
        '\'categories\' phải là danh sách hoặc "all" / must be a list of category ids or "all"',
    )


def is_demo_password(password_hash: str) -> bool:
    try:
        return PasswordHasher().verify(password_hash, DEMO_PASSWORD)
    except (VerificationError, InvalidHashError):
        return False


def _refuse_demo_passwords(config: OrgConfig) -> None:
    for m in config.members:
        if m.password == DEMO_PASSWORD or (m.password_hash and is_demo_password(m.password_hash)):
            raise OrgFileError(
                config.path,
                m.line,
                f"production không chấp nhận mật khẩu mẫu 'demo' / production refuses the demo "
                f"password 'demo' (account '{m.username}')",
            )


def _hash_passwords(config: OrgConfig, current: dict[str, str]) -> dict[str, str]:
    """Each member's password hash: the one given, the current one if the clear-text password
    still matches it (so a re-import is not a password change), or a new hash."""
    hasher = PasswordHasher()
    # One hash per distinct clear-text password in the file: the demo file gives every account
    # the same password, and hashing it forty times would cost seconds at every first start.
    by_password: dict[str, str] = {}
    matches: dict[tuple[str, str], bool] = {}
    out: dict[str, str] = {}
    for m in config.members:
        if m.password_hash is not None:
            out[m.username] = m.password_hash
            continue
        assert m.password is not None
        old = current.get(m.username)
        if old is not None:
            if (old, m.password) not in matches:
                matches[(old, m.password)] = _matches(hasher, old, m.password)
            if matches[(old, m.password)]:
                out[m.username] = old
                continue
        if m.password not in by_password:
            by_password[m.password] = hasher.hash(m.password)
        out[m.username] = by_password[m.password]
    return out


def _matches(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def import_org(engine: AsyncEngine, path: Path, *, env: str) -> OrgImportSummary:
    """Load `path` and upsert its units, categories and members; cases are never touched.

    Production refuses any account whose password is the demo one. A member deactivated,
    given another role or unit, or a new password loses their open sessions at once.
    """
    config = await asyncio.to_thread(load_org_file, path)
    if env == "production":
        await asyncio.to_thread(_refuse_demo_passwords, config)
    m = models.members
    async with engine.connect() as conn:
        current = {
            r.username: r.password_hash
            for r in await conn.execute(select(m.c.username, m.c.password_hash))
        }
    hashes = await asyncio.to_thread(_hash_passwords, config, current)
    async with engine.begin() as conn:
        return await _upsert(conn, config, hashes)


def _session_ending_change(old: Any, new: dict[str, Any]) -> str | None:
    """Why a member's change ends their sessions (what their tokens say is no longer true)."""
    if old.active and not new["active"]:
        return "deactivated"
    if old.role != new["role"] or old.unit_id != new["unit_id"]:
        return "role_changed"
    if old.password_hash != new["password_hash"]:
        return "password_changed"
    return None


async def _upsert(
    conn: AsyncConnection, config: OrgConfig, hashes: dict[str, str]
) -> OrgImportSummary:
    u, c, m = models.units, models.categories, models.members
    existing_units = set((await conn.scalars(select(u.c.id))).all())
    for unit in config.units:
        values = {"parent_id": unit.parent, "name": unit.name, "kind": unit.kind}
        if unit.id in existing_units:
            await conn.execute(update(u).where(u.c.id == unit.id).values(**values))
        else:
            await conn.execute(insert(u).values(id=unit.id, **values))
    existing_categories = set((await conn.scalars(select(c.c.id))).all())
    for cat in config.categories:
        cvalues: dict[str, Any] = {
            "name_vi": cat.name_vi,
            "name_en": cat.name_en,
            "deadline_hours": list(cat.deadline_hours),
        }
        if cat.id in existing_categories:
            await conn.execute(update(c).where(c.c.id == cat.id).values(**cvalues))
        else:
            await conn.execute(insert(c).values(id=cat.id, **cvalues))
    by_username = {row.username: row for row in (await conn.execute(select(m))).all()}
    created = updated = 0
    ending: dict[str, list[str]] = {}
    for member in config.members:
        mvalues: dict[str, Any] = {
            "name": member.name,
            "email": member.email,
            "unit_id": member.unit,
            "role": member.role,
            "categories": list(member.categories),
            "capacity": member.capacity,
            "password_hash": hashes[member.username],
            "active": member.active,
        }
        if member.username in by_username:
            old = by_username[member.username]
            if reason := _session_ending_change(old, mvalues):
                ending.setdefault(reason, []).append(old.id)
            await conn.execute(update(m).where(m.c.username == member.username).values(**mvalues))
            updated += 1
        else:
            await conn.execute(insert(m).values(id=member.id, username=member.username, **mvalues))
            created += 1
    for reason, member_ids in ending.items():
        await revoke_member_sessions(conn, member_ids, reason=reason)
    return OrgImportSummary(
        units=len(config.units),
        categories=len(config.categories),
        members=len(config.members),
        members_created=created,
        members_updated=updated,
    )


async def has_units(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool(await conn.scalar(select(func.count()).select_from(models.units)))


async def demo_password_accounts(engine: AsyncEngine) -> list[str]:
    """Usernames of active accounts whose password is still the demo one."""
    m = models.members
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(m.c.username, m.c.password_hash).where(m.c.active.is_(True)))
        ).all()
    verdicts: dict[str, bool] = {}
    found = []
    for row in rows:
        if row.password_hash not in verdicts:
            verdicts[row.password_hash] = await asyncio.to_thread(
                is_demo_password, row.password_hash
            )
        if verdicts[row.password_hash]:
            found.append(row.username)
    return found
