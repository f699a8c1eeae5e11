"""Staff JSON API: sign-in, the cases a member may see, and the actions a holder takes.

Members see the cases they hold or held; leaders also every case of their unit and the units
below it; administrators see everything. Each action is a compare-and-set transition whose
event goes out through the outbox.
"""

# No `from __future__ import annotations` here: FastAPI must evaluate the `Annotated`
# dependencies, which refer to names local to `build_router`.
import asyncio
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import and_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import models
from services.routing.assignment import Choice, rung_of
from services.routing.cases import (
    CaseConflict,
    Entry,
    Organisation,
    change,
    envelope,
    get_case,
    history,
    load_organisation,
    past_holders,
    placement_values,
    touch_member,
)
from services.routing.handlers import assigned_entry
from services.routing.lifecycle import Action, IllegalTransition, transition
from shared.auth import Staff, issue_token
from shared.events import CaseAccepted, CaseNoteAdded, CaseResolved
from shared.runtime import Runtime
from shared.web import ProblemError

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=5000)


class ResolveIn(BaseModel):
    explanation: str = Field(min_length=1, max_length=5000)


class ReassignIn(BaseModel):
    member_id: str | None = None
    username: str | None = None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _case_json(case: RowMapping, org: Organisation) -> dict[str, Any]:
    holder = org.member(case["holder_member_id"]) if case["holder_member_id"] else None
    return {
        "id": case["id"],
        "petition_id": case["petition_id"],
        "reference": case["reference"],
        "unit_id": case["unit_id"],
        "category_id": case["category_id"],
        "title": case["title"],
        "description": case["description"],
        "location": case["location"],
        "status": case["status"],
        "rung": case["rung"],
        "holder_member_id": case["holder_member_id"],
        "holder_username": holder.username if holder else None,
        "holder_name": holder.name if holder else None,
        "holder_unit_id": case["holder_unit_id"],
        "flag": case["flag"],
        "due_at": case["due_at"],
        "opened_at": case["opened_at"],
        "updated_at": case["updated_at"],
        "closed_at": case["closed_at"],
        "version": case["version"],
    }


def _leads(staff: Staff, case: RowMapping, org: Organisation) -> bool:
    """A leader of the case's unit or of a unit above it; an administrator."""
    if staff.is_admin:
        return True
    return (
        staff.role == "leader"
        and staff.unit_id is not None
        and staff.unit_id in org.ladder(case["unit_id"])
    )


def _may_act(staff: Staff, case: RowMapping, org: Organisation) -> bool:
    return case["holder_member_id"] == staff.member_id or _leads(staff, case, org)


def _illegal(exc: IllegalTransition | CaseConflict, action: str) -> ProblemError:
    return ProblemError(
        409,
        f"Không thể {action} hồ sơ ở trạng thái '{exc.current_status}' / "
        f"cannot {action} a case that is '{exc.current_status}'",
        type_="urn:petitions:problem:illegal-transition",
        current_status=exc.current_status,
    )


def build_router(runtime: Runtime, current_staff: Callable[..., Staff]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["staff"])
    engine = runtime.engine
    secret = runtime.settings.secret_key
    StaffDep = Annotated[Staff, Depends(current_staff)]

    @router.post("/auth/token")
    async def sign_in(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        """Staff sign-in with username and password; answers a bearer token."""
        m = models.members
        username = form.username.strip().lower()
        async with engine.connect() as conn:
            row = (await conn.execute(select(m).where(m.c.username == username))).mappings().first()
        ok = await asyncio.to_thread(
            _verify, row["password_hash"] if row else _DUMMY_HASH, form.password
        )
        if row is None or not ok or not row["active"]:
            raise ProblemError(
                401,
                "Sai tên đăng nhập hoặc mật khẩu / Wrong username or password",
                type_="urn:petitions:problem:bad-credentials",
            )
        staff = Staff(
            username=row["username"],
            member_id=row["id"],
            role=row["role"],
            unit_id=row["unit_id"],
            name=row["name"],
        )
        token = issue_token(staff, secret=secret.get_secret_value())
        return {"access_token": token, "token_type": "bearer"}

    @router.get("/me")
    async def me(staff: StaffDep) -> dict[str, Any]:
        return {
            "username": staff.username,
            "member_id": staff.member_id,
            "role": staff.role,
            "unit_id": staff.unit_id,
            "name": staff.name,
        }

    @router.get("/cases")
    async def list_cases(
        staff: StaffDep,
        scope: Literal["mine", "unit"] = "mine",
        petition_id: uuid.UUID | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 200,
    ) -> list[dict[str, Any]]:
        """The caller's cases; `scope=unit` gives a leader every case of their unit and below
        (an administrator: every case)."""
        k = models.cases
        async with engine.connect() as conn:
            org = await load_organisation(conn)
            conditions = []
            if scope == "mine":
                conditions.append(k.c.holder_member_id == staff.member_id)
            elif not staff.is_admin:
                if staff.role != "leader" or staff.unit_id is None:
                    raise HTTPException(403, "Chỉ trưởng đơn vị / Unit leaders only")
                conditions.append(k.c.unit_id.in_(org.subtree(staff.unit_id)))
            if petition_id is not None:
                conditions.append(k.c.petition_id == str(petition_id))
            if status is not None:
                conditions.append(k.c.status == status)
            rows = (
                (
                    await conn.execute(
                        select(k)
                        .where(and_(True, *conditions))
                        .order_by(k.c.opened_at.desc())
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [_case_json(r, org) for r in rows]

    async def _visible(
        conn: AsyncConnection, staff: Staff, case_id: str
    ) -> tuple[RowMapping, Organisation]:
        case = await get_case(conn, case_id)
        org = await load_organisation(conn)
        if case is None:
            raise HTTPException(404, "Không tìm thấy hồ sơ / No such case")
        if not _may_act(staff, case, org) and staff.member_id not in await past_holders(
            conn, case["id"]
        ):
            # Not "forbidden": whether a case exists is itself not for everyone to know.
            raise HTTPException(404, "Không tìm thấy hồ sơ / No such case")
        return case, org

    @router.get("/cases/{case_id}")
    async def case_detail(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        async with engine.connect() as conn:
            case, org = await _visible(conn, staff, str(case_id))
            body = _case_json(case, org)
            body["history"] = await history(conn, case["id"])
            n = models.notes
            body["notes"] = [
                dict(r)
                for r in (
                    await conn.execute(
                        select(n.c.member_id, n.c.note, n.c.at)
                        .where(n.c.case_id == case["id"])
                        .order_by(n.c.id)
                    )
                )
                .mappings()
                .all()
            ]
        return body

    async def _act(
        staff: Staff,
        case_id: uuid.UUID,
        action: Action,
        verb: str,
        build: Callable[[AsyncConnection, RowMapping, Organisation, str], Any],
    ) -> dict[str, Any]:
        now = runtime.clock.now()
        try:
            async with engine.begin() as conn:
                case, org = await _visible(conn, staff, str(case_id))
                if not _may_act(staff, case, org):
                    raise HTTPException(
                        403, "Chỉ người giữ hồ sơ hoặc lãnh đạo / Only the holder or a leader"
                    )
                new_status = transition(case["status"], action)
                values, entries = await build(conn, case, org, new_status)
                await change(conn, case, values=values, entries=entries, now=now)
                fresh = await get_case(conn, case["id"])
                assert fresh is not None
                body = _case_json(fresh, org)
        except (IllegalTransition, CaseConflict) as exc:
            raise _illegal(exc, verb) from exc
        runtime.relay.wake()
        return body

    def _env(case: RowMapping, kind: str, now: Any) -> dict[str, Any]:
        return envelope(
            case, kind=kind, rung=case["rung"], seq=case["version"] + 1, now=now, causation_id=None
        )

    @router.post("/cases/{case_id}/accept")
    async def accept(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> tuple[dict[str, Any], list[Entry]]:
            event = CaseAccepted(
                **_env(case, "accepted", runtime.clock.now()), member_id=_mid(staff)
            )
            return {"status": status}, [
                Entry(event, "accepted", actor=staff.username, member_id=_mid(staff))
            ]

        return await _act(staff, case_id, "accept", "nhận / accept", build)

    @router.post("/cases/{case_id}/notes")
    async def add_note(case_id: uuid.UUID, body: NoteIn, staff: StaffDep) -> dict[str, Any]:
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> tuple[dict[str, Any], list[Entry]]:
            now = runtime.clock.now()
            event = CaseNoteAdded(**_env(case, "note", now), member_id=_mid(staff), note=body.note)
            await conn.execute(
                models.notes.insert().values(
                    case_id=case["id"],
                    event_id=str(event.event_id),
                    member_id=_mid(staff),
                    note=body.note,
                    at=now,
                )
            )
            return {}, [Entry(event, "note", actor=staff.username, member_id=_mid(staff))]

        return await _act(staff, case_id, "note", "ghi chú / add a note to", build)

    @router.post("/cases/{case_id}/resolve")
    async def resolve(case_id: uuid.UUID, body: ResolveIn, staff: StaffDep) -> dict[str, Any]:
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> tuple[dict[str, Any], list[Entry]]:
            event = CaseResolved(
                **_env(case, "resolved", runtime.clock.now()),
                member_id=_mid(staff),
                explanation=body.explanation,
            )
            # Nothing is due while the resident is asked to confirm; the quiet-period closing
            # is the sweep's job.
            return {"status": status, "due_at": None, "flag": None}, [
                Entry(
                    event,
                    "resolved",
                    actor=staff.username,
                    member_id=_mid(staff),
                    detail={"explanation": body.explanation},
                )
            ]

        return await _act(staff, case_id, "resolve", "giải quyết / resolve", build)

    @router.post("/cases/{case_id}/reassign")
    async def reassign(case_id: uuid.UUID, body: ReassignIn, staff: StaffDep) -> dict[str, Any]:
        """A leader (or an administrator) hands the case to someone who serves its unit or a
        unit above it; the rung follows the new holder."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> tuple[dict[str, Any], list[Entry]]:
            if not _leads(staff, case, org):
                raise HTTPException(403, "Chỉ lãnh đạo đơn vị / Unit leaders only")
            target = (
                org.member(body.member_id)
                if body.member_id
                else org.by_username(body.username or "")
            )
            ladder = org.ladder(case["unit_id"])
            rung = rung_of(target, ladder) if target else None
            if target is None or target.role == "admin" or not target.active or rung is None:
                raise ProblemError(
                    422,
                    "Người nhận không phục vụ đơn vị này / The member does not serve this unit",
                    type_="urn:petitions:problem:bad-assignee",
                )
            now = runtime.clock.now()
            choice = Choice(target, rung, target.unit_id, "initial")
            entry = assigned_entry(
                case,
                choice,
                org=org,
                category_id=case["category_id"],
                reason="reassigned",
                seq=case["version"] + 1,
                now=now,
                causation_id=None,
                actor=staff.username,
            )
            await touch_member(conn, target.member_id, now)
            return placement_values(choice, org, case["category_id"], now), [entry]

        return await _act(staff, case_id, "assign", "giao lại / reassign", build)

    return router


def _mid(staff: Staff) -> str:
    return staff.member_id or staff.username
