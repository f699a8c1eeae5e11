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
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import and_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from services.routing import models
from services.routing.assignment import Choice
from services.routing.cases import (
    CaseConflict,
    Entry,
    Organisation,
    envelope,
    get_case,
    history,
    load_organisation,
    past_holders,
)
from services.routing.ladder import Ladder
from services.routing.lifecycle import Action, IllegalTransition, transition
from services.routing.transitions import Move, apply, escalate, move_to, pause
from shared.auth import Staff, issue_token
from shared.events import (
    CaseAccepted,
    CaseDeclined,
    CaseNoteAdded,
    CaseRejected,
    CaseResolved,
)
from shared.events.routing import DeclineReason
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


class DeclineIn(BaseModel):
    reason_code: DeclineReason
    comment: str | None = Field(default=None, max_length=2000)


class AskIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)


class EscalateIn(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class AbsenceIn(BaseModel):
    from_: AwareDatetime = Field(alias="from")
    until: AwareDatetime | None = None


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
        "ack_due_at": case["ack_due_at"],
        "question_id": case["question_id"],
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
        and staff.unit_id in org.chain(case["unit_id"])
    )


def _leadership(staff: Staff, case: RowMapping, org: Organisation) -> bool:
    """An administrator, or a leader of a unit above the case's own (the ward and up)."""
    if staff.is_admin:
        return True
    return (
        staff.role == "leader"
        and staff.unit_id is not None
        and staff.unit_id in org.chain(case["unit_id"])[1:]
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


def build_router(
    runtime: Runtime,
    current_staff: Callable[..., Staff],
    *,
    ladder: Ladder,
    wake_sweep: Callable[[], None] = lambda: None,
) -> APIRouter:
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
            org = await load_organisation(conn, ladder)
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
        org = await load_organisation(conn, ladder)
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
                move: Move = await build(conn, case, org, new_status)
                await apply(conn, case, move, now=now)
                fresh = await get_case(conn, case["id"])
                assert fresh is not None
                body = _case_json(fresh, org)
        except (IllegalTransition, CaseConflict) as exc:
            raise _illegal(exc, verb) from exc
        runtime.relay.wake()
        wake_sweep()
        return body

    def _env(case: RowMapping, kind: str, now: Any) -> dict[str, Any]:
        return envelope(
            case, kind=kind, rung=case["rung"], seq=case["version"] + 1, now=now, causation_id=None
        )

    @router.post("/cases/{case_id}/accept")
    async def accept(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            event = CaseAccepted(
                **_env(case, "accepted", runtime.clock.now()), member_id=_mid(staff)
            )
            return Move(
                values={"status": status, "ack_due_at": None},
                entries=[Entry(event, "accepted", actor=staff.username, member_id=_mid(staff))],
                cancel="ack",
            )

        return await _act(staff, case_id, "accept", "nhận / accept", build)

    @router.post("/cases/{case_id}/notes")
    async def add_note(case_id: uuid.UUID, body: NoteIn, staff: StaffDep) -> dict[str, Any]:
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
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
            return Move(
                values={},
                entries=[Entry(event, "note", actor=staff.username, member_id=_mid(staff))],
                cancel=None,
            )

        return await _act(staff, case_id, "note", "ghi chú / add a note to", build)

    @router.post("/cases/{case_id}/resolve")
    async def resolve(case_id: uuid.UUID, body: ResolveIn, staff: StaffDep) -> dict[str, Any]:
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            event = CaseResolved(
                **_env(case, "resolved", runtime.clock.now()),
                member_id=_mid(staff),
                explanation=body.explanation,
            )
            # Nothing is due while the resident is asked to confirm: every deadline of the
            # rung ends here, in the same transaction, so a resolved case never escalates.
            return Move(
                values={
                    "status": status,
                    "due_at": None,
                    "ack_due_at": None,
                    "flag": None,
                    "question_id": None,
                    "paused_remaining_s": None,
                },
                entries=[
                    Entry(
                        event,
                        "resolved",
                        actor=staff.username,
                        member_id=_mid(staff),
                        detail={"explanation": body.explanation},
                    )
                ],
            )

        return await _act(staff, case_id, "resolve", "giải quyết / resolve", build)

    @router.post("/cases/{case_id}/reassign")
    async def reassign(case_id: uuid.UUID, body: ReassignIn, staff: StaffDep) -> dict[str, Any]:
        """A leader (or an administrator) hands the case to someone who serves its unit or a
        unit above it; the rung follows the new holder."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if not _leads(staff, case, org):
                raise HTTPException(403, "Chỉ lãnh đạo đơn vị / Unit leaders only")
            target = (
                org.member(body.member_id)
                if body.member_id
                else org.by_username(body.username or "")
            )
            rung = org.rung_of(target, case["unit_id"], case["category_id"]) if target else None
            if target is None or target.role == "admin" or not target.active or rung is None:
                raise ProblemError(
                    422,
                    "Người nhận không phục vụ đơn vị này / The member does not serve this unit",
                    type_="urn:petitions:problem:bad-assignee",
                )
            choice = Choice(target, rung, target.unit_id, "initial")
            return move_to(
                case,
                choice,
                org,
                runtime.clock.now(),
                reason="reassigned",
                actor=staff.username,
            )

        return await _act(staff, case_id, "assign", "giao lại / reassign", build)

    @router.post("/cases/{case_id}/decline")
    async def decline(case_id: uuid.UUID, body: DeclineIn, staff: StaffDep) -> dict[str, Any]:
        """The holder hands the case back with a reason; it goes at once to someone else at the
        rung who has not declined it, else one rung up. A case declined too often at the first
        rung goes to the unit's leader instead of bouncing between members."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if case["holder_member_id"] != staff.member_id:
                raise HTTPException(403, "Chỉ người giữ hồ sơ / Only the holder may decline")
            now = runtime.clock.now()
            event = CaseDeclined(
                **_env(case, "declined", now),
                member_id=_mid(staff),
                reason_code=body.reason_code,
                comment=body.comment,
            )
            entry = Entry(
                event,
                "declined",
                actor=staff.username,
                member_id=_mid(staff),
                rung=case["rung"],
                detail={"reason_code": body.reason_code, "comment": body.comment},
            )
            before = await decliners(conn, case["id"])
            rung = case["rung"]
            if rung == 0 and len(before) >= ladder.policy.declines_before_leader:
                rung = 1
            choice = org.place(
                rung,
                unit_id=case["unit_id"],
                category_id=case["category_id"],
                now=now,
                exclude={*before, _mid(staff)},
            )
            if choice is None:
                return Move(
                    values={
                        "status": "unassigned",
                        "holder_member_id": None,
                        "flag": "unassigned",
                        "due_at": None,
                        "ack_due_at": None,
                    },
                    entries=[entry],
                )
            return move_to(
                case,
                choice,
                org,
                now,
                reason="declined",
                escalation="declined",
                actor=staff.username,
                before=[entry],
            )

        return await _act(staff, case_id, "decline", "từ chối / decline", build)

    @router.post("/cases/{case_id}/ask")
    async def ask(case_id: uuid.UUID, body: AskIn, staff: StaffDep) -> dict[str, Any]:
        """Ask the resident for information (shown on their tracking page): the deadline clock
        stops until they answer, or at most the policy's longest wait."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            return pause(
                case,
                org,
                runtime.clock.now(),
                member_id=_mid(staff),
                question=body.question,
                actor=staff.username,
            )

        return await _act(staff, case_id, "ask", "hỏi người dân / ask the resident about", build)

    @router.post("/cases/{case_id}/escalate")
    async def escalate_case(
        case_id: uuid.UUID, body: EscalateIn, staff: StaffDep
    ) -> dict[str, Any]:
        """A leader moves the case one rung up (or further while nobody can take a rung)."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if not _leads(staff, case, org):
                raise HTTPException(403, "Chỉ lãnh đạo đơn vị / Unit leaders only")
            move = escalate(
                case, org, runtime.clock.now(), reason="leader_decision", actor=staff.username
            )
            if move is None:
                raise ProblemError(
                    409,
                    "Hồ sơ đã ở cấp cao nhất / The case is already at the top rung",
                    type_="urn:petitions:problem:top-rung",
                )
            if body.comment:
                move.entries[0].detail["comment"] = body.comment
            return move

        return await _act(staff, case_id, "assign", "chuyển cấp / escalate", build)

    @router.post("/cases/{case_id}/take-over")
    async def take_over(case_id: uuid.UUID, staff: StaffDep) -> dict[str, Any]:
        """A leader takes the case on themselves, at their own rung; taking it from a lower
        rung is an escalation by decision."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            me = org.member(staff.member_id or "")
            rung = org.rung_of(me, case["unit_id"], case["category_id"]) if me else None
            if me is None or me.role != "leader" or not _leads(staff, case, org) or rung is None:
                raise HTTPException(403, "Chỉ lãnh đạo đơn vị / Unit leaders only")
            return move_to(
                case,
                Choice(me, rung, me.unit_id, "initial"),
                org,
                runtime.clock.now(),
                reason="escalated" if rung > case["rung"] else "reassigned",
                escalation="leader_decision",
                actor=staff.username,
                acknowledged=True,
            )

        return await _act(staff, case_id, "assign", "tiếp nhận / take over", build)

    @router.post("/cases/{case_id}/reject")
    async def reject(case_id: uuid.UUID, body: RejectIn, staff: StaffDep) -> dict[str, Any]:
        """Leadership (a leader of a unit above the case's, or an administrator) rejects the
        petition with a reason: out of scope, abusive, a duplicate handled elsewhere."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if not _leadership(staff, case, org):
                raise HTTPException(403, "Chỉ lãnh đạo cấp trên / Leadership only")
            now = runtime.clock.now()
            event = CaseRejected(
                **_env(case, "rejected", now), actor=staff.username, reason=body.reason
            )
            return Move(
                values={
                    "status": status,
                    "closed_at": now,
                    "due_at": None,
                    "ack_due_at": None,
                    "flag": None,
                },
                entries=[
                    Entry(event, "rejected", actor=staff.username, detail={"reason": body.reason})
                ],
            )

        return await _act(staff, case_id, "reject", "từ chối xử lý / reject", build)

    @router.post("/members/{member_id}/absence")
    async def set_absence(member_id: str, body: AbsenceIn, staff: StaffDep) -> dict[str, Any]:
        """A leader of the member's unit (or above) or an administrator marks a member away:
        they get no new cases while away, and their open cases go to the leader when the
        absence starts."""
        if body.until is not None and body.until <= body.from_:
            raise ProblemError(
                422,
                "Ngày về phải sau ngày đi / 'until' must be after 'from'",
                type_="urn:petitions:problem:validation",
            )
        m = models.members
        async with engine.begin() as conn:
            org = await load_organisation(conn, ladder, member_ids=())
            member = org.member(member_id)
            if member is None:
                raise HTTPException(404, "Không có thành viên này / No such member")
            allowed = staff.is_admin or (
                staff.role == "leader"
                and staff.unit_id is not None
                and staff.unit_id in org.chain(member.unit_id)
            )
            if not allowed:
                raise HTTPException(403, "Chỉ lãnh đạo đơn vị / Unit leaders only")
            await conn.execute(
                update(m)
                .where(m.c.id == member_id)
                .values(away_from=body.from_, away_until=body.until, absence_applied_from=None)
            )
        wake_sweep()
        return {
            "member_id": member_id,
            "away_from": body.from_,
            "away_until": body.until,
        }

    return router


async def decliners(conn: AsyncConnection, case_id: str) -> list[str]:
    """Members who declined the case, once per decline (oldest first)."""
    h = models.case_history
    rows = await conn.scalars(
        select(h.c.member_id)
        .where(and_(h.c.case_id == case_id, h.c.kind == "declined"))
        .order_by(h.c.id)
    )
    return [str(r) for r in rows.all()]


def _mid(staff: Staff) -> str:
    return staff.member_id or staff.username
