"""The one scope rule (`shared.scope`), walked through every staff endpoint of the three services.

The three services run in-process with their real brokers on the session's nats-server and
their own databases (SQLite, and PostgreSQL). The demo organisation is routing's
`demo_org.yaml`; residents submit through intake's API; routing assigns and, on an
administrator's word, escalates; notify follows the events. Six petitions stand in each position
the issue names, seen from the plain member `dangthutai` of khóm Thới An A: his own, a
unit-mate's, a sub-unit's (tổ 2), a sub-unit's escalated to his leader, his own escalated above
the khóm to the ward, and one of the other commune. Each demo role then asks every staff
endpoint about every petition, and `EXPECTED` is the one answer all of them must give.

The endpoints are read from the apps' routes: an endpoint that takes a signed-in person and is
not in `CHECKS` (or `EXCLUDED`, with the reason) fails the test, so a new one cannot be missed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from services.intake.app import create_app as create_intake
from services.intake.settings import Settings as IntakeSettings
from services.notify.app import create_app as create_notify
from services.notify.config import Meeting
from services.routing.app import create_app as create_routing
from services.routing.org import DEMO_ORG_FILE
from services.routing.settings import Settings as RoutingSettings
from shared.auth import SESSION_COOKIE, read_token
from shared.webkit.forms import CSRF_FIELD
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.notify.conftest import make_config, make_settings
from tests.support import eventually, service_nats

SECRET = "scope-table-secret-of-at-least-32-characters"
KHOM, TO2, KHANH2 = "my-thoi-thoi-an-a", "my-thoi-thoi-an-a-to-2", "my-hoa-hung-my-khanh-2"


@dataclass(frozen=True)
class Position:
    """A petition of `unit` about `category`, held in turn by `holders` (routing assigns the
    first; an administrator escalates it to each next one)."""

    unit: str
    category: str
    holders: tuple[str, ...]


# In submission order: routing's first choice depends on who already holds what.
POSITIONS: dict[str, Position] = {
    "own": Position(KHOM, "roads_lighting", ("dangthutai",)),
    "unit_mate": Position(KHOM, "roads_lighting", ("lyhoangtrang",)),
    "escalated_above": Position(
        KHOM, "roads_lighting", ("dangthutai", "bithu.thoiana", "danguy.mythoi")
    ),
    "sub_unit": Position(TO2, "roads_lighting", ("lehuuhai",)),
    "escalated_from_below": Position(TO2, "security_order", ("ngovanthanh", "bithu.thoiana")),
    "other_commune": Position(KHANH2, "roads_lighting", ("buihoangluc",)),
}
ALL = frozenset(POSITIONS)

# The table: which petitions each demo role sees, everywhere. Administrators all; leaders those
# of their unit and the units below it; members what they hold or held.
EXPECTED: dict[str, frozenset[str]] = {
    "admin": ALL,
    "danguy.mythoi": ALL - {"other_commune"},  # ward leader
    "bithu.thoiana": ALL - {"other_commune"},  # khóm leader: his khóm and its tổ
    "dangthutai": frozenset({"own", "escalated_above"}),  # khóm member: his, and held before
    "lyhoangtrang": frozenset({"unit_mate"}),
    "lehuuhai": frozenset({"sub_unit"}),  # tổ 2 member
    "ngovanthanh": frozenset({"escalated_from_below"}),  # held it before it went up
    "danguy.myhoahung": frozenset({"other_commune"}),  # the other commune's leader
    "buihoangluc": frozenset({"other_commune"}),
}
ROLES = tuple(EXPECTED)


def demo_org() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO_ORG_FILE.read_text(encoding="utf-8"))
    return data


def subtree(unit: str, parents: dict[str, str | None]) -> set[str]:
    def chain(u: str | None) -> list[str]:
        out = []
        while u is not None:
            out.append(u)
            u = parents.get(u)
        return out

    return {u for u in parents if unit in chain(u)}


@dataclass
class Stack:
    intake_app: FastAPI
    routing_app: FastAPI
    notify_app: FastAPI
    intake: httpx.AsyncClient
    routing: httpx.AsyncClient
    notify: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)
    member_ids: dict[str, str] = field(default_factory=dict)
    # Position → petition id, case id, reference; and the units its figures count it under.
    petitions: dict[str, dict[str, str]] = field(default_factory=dict)
    units_of: dict[str, set[str]] = field(default_factory=dict)
    digests: list[int] = field(default_factory=list)

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def cookie(self, role: str) -> dict[str, str]:
        return {SESSION_COOKIE: self.tokens[role]}

    def client(self, service: str) -> httpx.AsyncClient:
        return {"intake": self.intake, "routing": self.routing, "notify": self.notify}[service]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[str]]:
    """One database per service, on SQLite or on PostgreSQL."""
    if request.param == "sqlite":
        yield [f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in ("i", "r", "n")]
        return
    urls = [await create_postgres_database() for _ in range(3)]
    try:
        yield urls
    finally:
        for url in urls:
            await drop_postgres_database(url)


@pytest.fixture
async def stack(nats_url: str, database_urls: list[str], tmp_path: Path) -> AsyncIterator[Stack]:
    intake_db, routing_db, notify_db = database_urls
    common: dict[str, Any] = {"env": "test", "secret_key": SECRET}
    intake = create_intake(
        IntakeSettings(**common, **service_nats(nats_url, "intake"), database_url=intake_db)
    )
    routing = create_routing(
        RoutingSettings(
            **common, **service_nats(nats_url, "routing"), database_url=routing_db, seed_demo=True
        )
    )
    meetings = {
        unit: {"weekday": 0, "at": "19:00", "digest_hours_before": 24} for unit in (KHOM, TO2)
    }
    settings = make_settings(nats_url, notify_db, tmp_path, secret_key=SECRET)
    notify = create_notify(settings, config=make_config(meetings=meetings))
    apps = {"intake": intake, "routing": routing, "notify": notify}
    async with (
        routing.router.lifespan_context(routing),
        intake.router.lifespan_context(intake),
        notify.router.lifespan_context(notify),
    ):
        clients = {
            name: httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"
            )
            for name, app in apps.items()
        }
        try:
            yield Stack(
                intake_app=intake,
                routing_app=routing,
                notify_app=notify,
                intake=clients["intake"],
                routing=clients["routing"],
                notify=clients["notify"],
            )
        finally:
            for client in clients.values():
                await client.aclose()


async def sign_in(stack: Stack) -> None:
    for role in ROLES:
        response = await stack.routing.post(
            "/api/v1/auth/token", data={"username": role, "password": "demo"}
        )
        assert response.status_code == 200, response.text
        stack.tokens[role] = response.json()["access_token"]
        me = await stack.routing.get("/api/v1/me", headers=stack.bearer(role))
        stack.member_ids[role] = me.json()["member_id"]


async def case_of(stack: Stack, petition_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        response = await stack.routing.get(
            "/api/v1/cases",
            params={"scope": "unit", "petition_id": petition_id},
            headers=stack.bearer("admin"),
        )
        cases: list[dict[str, Any]] = response.json()
        return cases[0] if cases and cases[0]["holder_username"] else None

    return await eventually(found, what=f"routing assigns petition {petition_id}")


async def place(stack: Stack, name: str, position: Position) -> None:
    """Submit the petition through intake, then escalate it along its holders."""
    submitted = await stack.intake.post(
        "/api/v1/petitions",
        json={
            "unit_id": position.unit,
            "category_id": position.category,
            "title": f"Phản ánh {name}",
            "description": f"Nội dung phản ánh {name} của người dân.",
            "consent": True,
        },
    )
    assert submitted.status_code == 201, submitted.text
    receipt = submitted.json()
    case = await case_of(stack, receipt["petition_id"])
    for holder in position.holders[1:]:
        assert case["holder_username"] != holder
        escalated = await stack.routing.post(
            f"/api/v1/cases/{case['id']}/escalate", json={}, headers=stack.bearer("admin")
        )
        assert escalated.status_code == 200, escalated.text
        case = escalated.json()
    assert case["holder_username"] == position.holders[-1], (name, case["holder_username"])
    stack.petitions[name] = {
        "petition_id": receipt["petition_id"],
        "case_id": str(case["id"]),
        "reference": receipt["reference"],
    }


async def settle(stack: Stack) -> None:
    """Wait until notify has taken in every assignment routing made, then note the units each
    petition's figures count it under (its own, and the unit of every rung that held it)."""
    admin = stack.bearer("admin")
    for name, position in POSITIONS.items():
        pid = stack.petitions[name]["petition_id"]
        holder = stack.member_ids.get(position.holders[-1]) or position.holders[-1]

        async def caught_up(pid: str = pid, holder: str = holder, n: int = len(position.holders)):
            response = await stack.notify.get(f"/api/v1/stats/petitions/{pid}", headers=admin)
            if response.status_code != 200:
                return None
            body: dict[str, Any] = response.json()
            return body if body["member_id"] == holder and len(body["rungs"]) == n else None

        facts = await eventually(caught_up, what=f"notify follows petition {name}")
        stack.units_of[name] = {facts["unit_id"], *(r["unit_id"] for r in facts["rungs"])}

    async def delivered() -> bool:
        response = await stack.notify.get(
            "/api/v1/notifications", params={"status": "queued"}, headers=admin
        )
        return response.json() == []

    await eventually(delivered, what="notify delivers what it queued")


async def make_digests(stack: Stack) -> None:
    scheduler = stack.notify_app.state.scheduler
    now = stack.notify_app.state.runtime.clock.now()
    meeting = Meeting(weekday=0, at=time(19))
    for unit in (KHOM, TO2):
        made = await scheduler.make_digest(
            unit, meeting, since=now - timedelta(days=7), meeting_at=now + timedelta(days=1)
        )
        assert made is not None
        stack.digests.append(made)


def named(stack: Stack, text: str) -> set[str]:
    """The petitions whose reference appears in a page or a body."""
    return {
        name
        for name, p in stack.petitions.items()
        if re.search(rf"(?<![\w-]){re.escape(p['reference'])}(?![\w-])", text)
    }


# --- The checks: each asks one endpoint, for one role, about every petition it concerns ---

Check = Callable[[Stack, str], Awaitable[None]]
Result = dict[str, bool]


def one_petition(service: str, path: str, *, page: bool = False) -> Check:
    """A petition's own view: 200 for those who may see it, 404 (as for no petition at all)
    for everyone else, never anything between."""

    async def check(stack: Stack, role: str) -> None:
        seen: Result = {}
        for name, p in stack.petitions.items():
            url = path.format(**p)
            auth: dict[str, Any] = (
                {"cookies": stack.cookie(role)} if page else {"headers": stack.bearer(role)}
            )
            response = await stack.client(service).get(url, **auth)
            assert response.status_code in (200, 404), (service, url, role, response.text)
            seen[name] = response.status_code == 200
            if seen[name] and page:
                assert p["reference"] in response.text
        assert {n for n, s in seen.items() if s} == EXPECTED[role], (service, path, role)

    return check


def refused_action(service: str, path: str, body: dict[str, Any], *, page: bool = False) -> Check:
    """A case action by someone the rule hides the case from: "not found" (and the test checks
    that walking the table changed no case). Those who may see the case are not walked here:
    the action would change it; the routing tests cover what each of them may do, after the
    same visibility check (`CaseActions._visible`)."""

    async def check(stack: Stack, role: str) -> None:
        for name in ALL - EXPECTED[role]:
            p = stack.petitions[name]
            url = path.format(**p)
            if page:
                session_id = read_token(stack.tokens[role], secret=SECRET).session_id
                assert session_id
                form = {**body, CSRF_FIELD: stack.routing_app.state.guard.csrf(session_id)}
                response = await stack.routing.post(url, data=form, cookies=stack.cookie(role))
            else:
                response = await stack.routing.post(url, json=body, headers=stack.bearer(role))
            assert response.status_code == 404, (service, url, role, response.status_code)

    return check


async def case_versions(stack: Stack) -> dict[str, int]:
    versions = {}
    for name, p in stack.petitions.items():
        response = await stack.routing.get(
            f"/api/v1/cases/{p['case_id']}", headers=stack.bearer("admin")
        )
        versions[name] = response.json()["version"]
    return versions


def listing(service: str, path: str, *, page: bool = False, exact: bool = False) -> Check:
    """A list: it names only petitions the person may see (`exact`: all of them)."""

    async def check(stack: Stack, role: str) -> None:
        auth: dict[str, Any] = (
            {"cookies": stack.cookie(role)} if page else {"headers": stack.bearer(role)}
        )
        response = await stack.client(service).get(path, **auth)
        if response.status_code == 403:
            assert not exact
            return
        assert response.status_code == 200, (path, role, response.text)
        shown = named(stack, response.text)
        if exact:
            assert shown == EXPECTED[role], (path, role, shown)
        assert shown <= EXPECTED[role], (path, role, shown - EXPECTED[role])

    return check


def role_of(username: str) -> str:
    return str(next(m for m in demo_org()["members"] if m["username"] == username)["role"])


def routing_cases(scope: str, *, page: bool = False) -> Check:
    """Routing's case lists: "mine" is what the person holds now; "unit" gives leaders and
    administrators every case of their unit and below, which is exactly what they may see
    (none of the demo leaders sees a case only as its former holder)."""

    async def check(stack: Stack, role: str) -> None:
        leader = role_of(role) in ("leader", "admin")
        path = f"{'' if page else '/api/v1'}/cases?scope={scope}"
        await listing("routing", path, page=page, exact=scope == "unit" and leader)(stack, role)
        if scope != "mine" or page:
            return
        response = await stack.routing.get("/api/v1/cases", headers=stack.bearer(role))
        mine = {c["petition_id"] for c in response.json()}
        held = {
            stack.petitions[n]["petition_id"]
            for n, pos in POSITIONS.items()
            if pos.holders[-1] == role
        }
        assert mine == held, role

    return check


async def unit_figures(stack: Stack, role: str) -> None:
    """A unit's figures: for the leaders of it or of a unit above it (and administrators),
    and then every petition they count is one the person may see."""
    org = demo_org()
    parents = {u["id"]: u.get("parent") for u in org["units"]}
    member = next(m for m in org["members"] if m["username"] == role)
    reach = {
        "admin": set(parents),
        "leader": subtree(member["unit"], parents),
    }.get(member["role"], set())
    for unit in parents:
        for sub_units in ("false", "true"):
            response = await stack.notify.get(
                f"/api/v1/stats/units/{unit}",
                params={"sub_units": sub_units},
                headers=stack.bearer(role),
            )
            assert response.status_code == (200 if unit in reach else 403), (role, unit)
            if response.status_code != 200:
                continue
            added = set(response.json()["units"])
            counted = {n for n, units in stack.units_of.items() if units & added}
            assert counted <= EXPECTED[role], (role, unit, counted - EXPECTED[role])


async def member_figures(stack: Stack, role: str) -> None:
    """A member's figures: for the member, leaders of their unit or above, administrators;
    and then every petition the member held is one the person may see."""
    for holder in {h for p in POSITIONS.values() for h in p.holders}:
        response = await stack.notify.get(
            f"/api/v1/stats/members/{stack.member_ids[holder]}", headers=stack.bearer(role)
        )
        assert response.status_code in (200, 403), (role, holder, response.text)
        held = {n for n, p in POSITIONS.items() if holder in p.holders}
        if response.status_code == 200:
            assert held <= EXPECTED[role], (role, holder, held - EXPECTED[role])
        else:
            assert role not in (holder, "admin")


def digest(path: str, *, page: bool = False) -> Check:
    """A meeting digest (stored or previewed): the cases in it are ones the person may see;
    the unit's members get their own line, leaders of the unit or above all of it."""

    async def check(stack: Stack, role: str) -> None:
        for digest_id, unit in zip(stack.digests, (KHOM, TO2), strict=True):
            url = path.format(digest_id=digest_id, unit_id=unit)
            auth: dict[str, Any] = (
                {"cookies": stack.cookie(role)} if page else {"headers": stack.bearer(role)}
            )
            response = await stack.notify.get(url, **auth)
            assert response.status_code in (200, 404), (url, role, response.text)
            shown = named(stack, response.text)
            assert shown <= EXPECTED[role], (url, role, shown - EXPECTED[role])
            if role in ("admin", "danguy.mythoi", "bithu.thoiana"):
                assert response.status_code == 200
                whole = {n for n, units in stack.units_of.items() if unit in units}
                assert shown == whole & EXPECTED[role], (url, role)

    return check


async def inbox(stack: Stack, role: str) -> None:
    """The person's own messages: none about a petition they may not see, in any words."""
    response = await stack.notify.get(
        "/api/v1/inbox", params={"limit": 200}, headers=stack.bearer(role)
    )
    if stack.member_ids[role] is None:
        assert response.status_code == 403
        return
    assert response.status_code == 200, response.text
    ids = {stack.petitions[n]["petition_id"] for n in EXPECTED[role]}
    for message in response.json()["messages"]:
        assert message["petition_id"] in (None, *ids), (role, message["title_en"])
    assert named(stack, response.text) <= EXPECTED[role]


async def someone_elses_message(stack: Stack, role: str) -> None:
    """Marking read is for one's own messages: someone else's is "not found"."""
    others = [r for r in ("dangthutai", "lehuuhai") if r != role]
    response = await stack.notify.get("/api/v1/inbox", headers=stack.bearer(others[0]))
    theirs = response.json()["messages"]
    assert theirs, "the holder has messages"
    read = await stack.notify.post(
        f"/api/v1/inbox/{theirs[0]['id']}/read", headers=stack.bearer(role)
    )
    assert read.status_code == (403 if stack.member_ids[role] is None else 404), role


def admin_only(service: str, method: str, path: str) -> Check:
    """Administrators' tools (they see every petition): refused to everyone else. Retries and
    revocations are asked about an id that names nothing, so nothing changes."""

    async def check(stack: Stack, role: str) -> None:
        response = await stack.client(service).request(
            method, path, headers=stack.bearer(role), json={}
        )
        if role != "admin":
            assert response.status_code == 403, (service, path, role, response.status_code)
        else:
            assert response.status_code in (200, 404, 422), (service, path, response.text)

    return check


NOWHERE = "999999"
CASE = "/api/v1/cases/{case_id}"
ACTIONS: dict[str, dict[str, Any]] = {
    "accept": {},
    "notes": {"note": "Ghi chú"},
    "resolve": {"explanation": "Đã xử lý"},
    "reassign": {"username": "dangthutai"},
    "decline": {"reason_code": "not_my_area"},
    "ask": {"question": "Số nhà?"},
    "escalate": {},
    "take-over": {},
    "reject": {"reason": "Ngoài phạm vi"},
}
PAGE_ACTIONS = {"note": {"note": "Ghi chú"}, "take-over": {}, "escalate": {}}

CHECKS: dict[tuple[str, str, str], list[Check]] = {
    ("routing", "GET", "/api/v1/cases"): [routing_cases("mine"), routing_cases("unit")],
    ("routing", "GET", CASE): [one_petition("routing", CASE)],
    **{
        ("routing", "POST", f"{CASE}/{action}"): [refused_action("routing", f"{CASE}/{action}", b)]
        for action, b in ACTIONS.items()
    },
    ("routing", "GET", "/cases"): [
        routing_cases("mine", page=True),
        routing_cases("unit", page=True),
    ],
    ("routing", "GET", "/cases/{case_id}"): [
        one_petition("routing", "/cases/{case_id}", page=True)
    ],
    ("routing", "POST", "/cases/{case_id}/{action}"): [
        refused_action("routing", f"/cases/{{case_id}}/{action}", b, page=True)
        for action, b in PAGE_ACTIONS.items()
    ],
    ("notify", "GET", "/api/v1/petitions/{petition_id}/timeline"): [
        one_petition("notify", "/api/v1/petitions/{petition_id}/timeline")
    ],
    ("notify", "GET", "/api/v1/stats/petitions/{petition_id}"): [
        one_petition("notify", "/api/v1/stats/petitions/{petition_id}")
    ],
    ("notify", "GET", "/petitions/{petition_id}"): [
        one_petition("notify", "/petitions/{petition_id}", page=True)
    ],
    ("notify", "GET", "/"): [listing("notify", "/", page=True, exact=True)],
    ("notify", "GET", "/api/v1/stats/units/{unit_id}"): [unit_figures],
    ("notify", "GET", "/api/v1/stats/members/{member_id}"): [member_figures],
    ("notify", "GET", "/api/v1/digests/{digest_id}"): [digest("/api/v1/digests/{digest_id}")],
    ("notify", "GET", "/digests/{digest_id}"): [digest("/digests/{digest_id}", page=True)],
    ("notify", "GET", "/units/{unit_id}/digest"): [digest("/units/{unit_id}/digest", page=True)],
    ("notify", "GET", "/api/v1/inbox"): [inbox],
    ("notify", "POST", "/api/v1/inbox/{message_id}/read"): [someone_elses_message],
    ("notify", "GET", "/api/v1/notifications"): [
        admin_only("notify", "GET", "/api/v1/notifications"),
        listing("notify", "/api/v1/notifications"),
    ],
    ("notify", "POST", "/api/v1/notifications/{notification_id}/retry"): [
        admin_only("notify", "POST", f"/api/v1/notifications/{NOWHERE}/retry")
    ],
    **{
        (service, "GET", "/api/v1/admin/dead-letters"): [
            admin_only(service, "GET", "/api/v1/admin/dead-letters")
        ]
        for service in ("intake", "routing", "notify")
    },
    **{
        (service, "POST", "/api/v1/admin/dead-letters/{dead_letter_id}/retry"): [
            admin_only(service, "POST", f"/api/v1/admin/dead-letters/{NOWHERE}/retry")
        ]
        for service in ("intake", "routing", "notify")
    },
    ("intake", "GET", "/api/v1/admin/open311/keys"): [
        admin_only("intake", "GET", "/api/v1/admin/open311/keys")
    ],
    ("intake", "POST", "/api/v1/admin/open311/keys"): [
        # An empty body: refused to non-administrators before it is read, 422 for them.
        admin_only("intake", "POST", "/api/v1/admin/open311/keys")
    ],
    ("intake", "DELETE", "/api/v1/admin/open311/keys/{key_id}"): [
        admin_only("intake", "DELETE", f"/api/v1/admin/open311/keys/{NOWHERE}")
    ],
}

# Staff endpoints that say nothing about any petition, and why.
EXCLUDED: dict[tuple[str, str, str], str] = {
    ("routing", "GET", "/api/v1/me"): "the caller's own identity",
    ("routing", "POST", "/api/v1/members/{member_id}/absence"): "an absence, no petition data",
    ("routing", "GET", "/me/absence"): "the caller's own absence form",
    ("routing", "POST", "/me/absence"): "the caller's own absence",
    ("routing", "GET", "/"): "sends to the workspace or the sign-in page",
    ("routing", "GET", "/signin"): "the sign-in form",
    ("routing", "POST", "/signout"): "signing out",
    ("routing", "POST", "/api/v1/auth/signout"): "ends the caller's own session",
    ("routing", "POST", "/api/v1/me/password"): "the caller's own password",
    ("routing", "GET", "/me/password"): "the caller's own password form",
    ("routing", "POST", "/me/password"): "the caller's own password",
    ("routing", "GET", "/api/v1/me/signins"): "the caller's own sign-in history",
    ("routing", "GET", "/me/signins"): "the caller's own sign-in history",
    # Accounts, no petition data; in reach by `shared.scope.may_see_unit` on the member's unit
    # (tests/routing/test_accounts.py walks it).
    ("routing", "GET", "/api/v1/members/{member_id}/signins"): "an account's sign-in history",
    ("routing", "GET", "/members/{member_id}/signins"): "an account's sign-in history",
    ("routing", "POST", "/api/v1/admin/members/{member_id}/password-link"): "an account link",
    ("routing", "POST", "/members/{member_id}/password-link"): "an account link",
    ("routing", "GET", "/members"): "the accounts a leader or an administrator manages",
    ("notify", "GET", "/api/v1/inbox/unread-count"): "a count of the caller's own messages",
    ("notify", "POST", "/api/v1/inbox/read-all"): "marks the caller's own messages read",
}


def staff_endpoints(apps: dict[str, FastAPI]) -> set[tuple[str, str, str]]:
    """Every (service, method, path) whose route reads who is signed in, from the apps."""

    def reads_staff(dependant: Any) -> bool:
        for dep in dependant.dependencies:
            name = getattr(dep.call, "__name__", "")
            if name in ("current_staff", "staff_session") or reads_staff(dep):
                return True
        return False

    found = set()
    for service, app in apps.items():
        for route in iter_route_contexts(app.router.routes):
            dependant = getattr(route.original_route, "dependant", None)
            if dependant is None or not reads_staff(dependant):
                continue
            for method in getattr(route.original_route, "methods", None) or ():
                if method != "HEAD":
                    found.add((service, method, route.path))
    return found


async def test_every_staff_endpoint_answers_the_one_scope_rule(stack: Stack) -> None:
    apps = {
        "intake": stack.intake_app,
        "routing": stack.routing_app,
        "notify": stack.notify_app,
    }
    endpoints = staff_endpoints(apps)
    assert endpoints - set(CHECKS) - set(EXCLUDED) == set(), "a staff endpoint the table misses"
    assert set(CHECKS) | set(EXCLUDED) <= endpoints, "the table names an endpoint that is gone"

    await sign_in(stack)
    for name, position in POSITIONS.items():
        await place(stack, name, position)
    await settle(stack)
    await make_digests(stack)

    before = await case_versions(stack)
    for _, checks in sorted(CHECKS.items()):
        for check in checks:
            for role in ROLES:
                await check(stack, role)
    assert await case_versions(stack) == before, "asking changed a case"
