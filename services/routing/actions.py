"""What staff do with cases, shared by the JSON API and the workspace pages, so both enforce
the same rules and write the same events.

Members see the cases they hold or held; leaders also every case of their unit and the units
below it; administrators see everything. Who may do what is `permissions.permissions`, asked
once per request. Each action is a compare-and-set transition whose events go out through the
outbox in the same transaction. Refusals are `errors.ActionError`s carrying a Vietnamese and an
English sentence; the HTTP edge turns them into problem details, the pages into a message on
the same page.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.routing import models
from services.routing.assignment import Candidate, Choice
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
from services.routing.errors import (
    ActionError,
    CaseNotFound,
    InvalidInput,
    MemberNotFound,
    NotPermitted,
    Refused,
)
from services.routing.ladder import Ladder
from services.routing.lifecycle import Action as Step
from services.routing.lifecycle import IllegalTransition, Status, explain_refusal, transition
from services.routing.permissions import (
    WHO_MAY,
    Action,
    CaseFacts,
    by_role,
    may_list_unit,
    may_mark_away,
    may_see,
    permissions,
)
from services.routing.signin import SignInThrottle, sign_in, visible_units
from services.routing.transitions import Move, apply, escalate, move_to, pause, unheld
from shared.auth import Staff
from shared.clock import Clock
from shared.events import CaseAccepted, CaseDeclined, CaseNoteAdded, CaseRejected, CaseResolved
from shared.events.routing import DeclineReason

# The workspace pages import these from here, beside the actions they refuse.
__all__ = [
    "ActionError",
    "CaseActions",
    "CaseNotFound",
    "CaseView",
    "InvalidInput",
    "NotPermitted",
    "Refused",
    "SignInThrottle",
    "eligible_assignees",
    "facts",
    "visible_units",
]


@dataclass(frozen=True)
class CaseView:
    """A case with what the caller may do to it (`allowed`: names of `permissions.Action`)."""

    case: RowMapping
    org: Organisation
    allowed: frozenset[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def facts(case: RowMapping, org: Organisation) -> CaseFacts:
    """What the permission rule needs of a case row."""
    return CaseFacts(
        status=case["status"],
        holder_member_id=case["holder_member_id"],
        units=tuple(org.chain(case["unit_id"])),
    )


def eligible_assignees(case: RowMapping, org: Organisation) -> list[Candidate]:
    """Who a leader may hand the case to: active people serving its unit or a unit above it
    who take its category at some rung; not the current holder."""
    return [
        c
        for c in org.serving(org.chain(case["unit_id"]))
        if c.active
        and c.role != "admin"
        and c.member_id != case["holder_member_id"]
        and org.rung_of(c, case["unit_id"], case["category_id"]) is not None
    ]


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


def _no_case() -> CaseNotFound:
    return CaseNotFound("Không tìm thấy hồ sơ.", "No such case.")


# The state machine's step each staff action takes (reassigning, escalating and taking over
# all assign the case anew).
_STEP: dict[Action, Step] = {
    "accept": "accept",
    "resolve": "resolve",
    "ask": "ask",
    "decline": "decline",
    "note": "note",
    "reassign": "assign",
    "escalate": "assign",
    "take-over": "assign",
    "reject": "reject",
}


def _after(action: Action, current: str) -> Status:
    """The status the action leads to (IllegalTransition when the state machine forbids it).
    Resolving a case not yet accepted accepts it first."""
    if action == "resolve" and current == "assigned":
        return transition(transition(current, "accept"), "resolve")
    return transition(current, _STEP[action])


def _check(staff: Staff, case: RowMapping, org: Organisation, action: Action) -> None:
    """Refuse an action the caller may not take now: by their place (403) or by the case's
    state (409, saying the state in words and what to do first)."""
    known = facts(case, org)
    if action in permissions(staff, known):
        return
    if action not in by_role(staff, known):
        raise NotPermitted(*WHO_MAY[action])
    raise _refused(action, case["status"])


def _refused(action: str, status: str, *, concurrent: bool = False) -> Refused:
    vi, en = explain_refusal(action, status, concurrent=concurrent)
    return Refused(vi, en, current_status=status)


def _required(value: str, limit: int, vi: str, en: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidInput(f"Vui lòng nhập {vi}.", f"Please write the {en}.")
    if len(value) > limit:
        raise InvalidInput(
            f"{vi.capitalize()} dài quá {limit} ký tự.", f"The {en} is over {limit} characters."
        )
    return value


def _comment(value: str | None) -> str | None:
    return (value or "").strip()[:2000] or None


Build = Callable[[AsyncConnection, RowMapping, Organisation, Status], Awaitable[Move]]


class CaseActions:
    """The staff's actions, bound to the service's database, clock and ladder."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        clock: Clock,
        ladder: Ladder,
        after_commit: Callable[[], None] = lambda: None,
        wake_sweep: Callable[[], None] = lambda: None,
        throttle: SignInThrottle | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.ladder = ladder
        self._after_commit = after_commit
        self._wake_sweep = wake_sweep
        self.throttle = throttle or SignInThrottle(engine)

    async def sign_in(
        self, *, username: str, password: str, client: str, user_agent: str = ""
    ) -> Staff:
        """The staff member behind a username and password (see `signin.sign_in`)."""
        return await sign_in(
            self.engine,
            self.throttle,
            username=username,
            password=password,
            client=client,
            user_agent=user_agent,
        )

    async def list_cases(
        self,
        staff: Staff,
        *,
        scope: Literal["mine", "unit"] = "mine",
        petition_id: str | None = None,
        statuses: Collection[str] | None = None,
        limit: int = 200,
    ) -> tuple[list[RowMapping], Organisation]:
        """The caller's cases; `scope="unit"` gives a leader every case of their unit and below
        (an administrator: every case)."""
        k = models.cases
        async with self.engine.connect() as conn:
            org = await load_organisation(conn, self.ladder)
            conditions = _scope(staff, scope, org)
            if petition_id is not None:
                conditions.append(k.c.petition_id == petition_id)
            if statuses is not None:
                conditions.append(k.c.status.in_(list(statuses)))
            query = (
                select(k).where(and_(True, *conditions)).order_by(k.c.opened_at.desc()).limit(limit)
            )
            rows = (await conn.execute(query)).mappings().all()
        return list(rows), org

    async def _visible(
        self, conn: AsyncConnection, staff: Staff, case_id: str
    ) -> tuple[RowMapping, Organisation]:
        try:
            uuid.UUID(case_id)
        except ValueError:
            raise _no_case() from None
        case = await get_case(conn, case_id)
        if case is None:
            raise _no_case()
        org = await load_organisation(conn, self.ladder)
        if not may_see(staff, facts(case, org), await past_holders(conn, case["id"])):
            # Not "forbidden": whether a case exists is itself not for everyone to know.
            raise _no_case()
        return case, org

    async def view(self, staff: Staff, case_id: str) -> CaseView:
        """A case the caller may see, with its history, its notes and what they may do now."""
        n = models.notes
        async with self.engine.connect() as conn:
            case, org = await self._visible(conn, staff, case_id)
            query = (
                select(n.c.member_id, n.c.note, n.c.at)
                .where(n.c.case_id == case["id"])
                .order_by(n.c.id)
            )
            notes = [dict(r) for r in (await conn.execute(query)).mappings().all()]
            lines = await history(conn, case["id"])
        return CaseView(
            case=case,
            org=org,
            allowed=frozenset(permissions(staff, facts(case, org))),
            history=lines,
            notes=notes,
        )

    async def _act(
        self, staff: Staff, case_id: str, action: Action, build: Build
    ) -> tuple[RowMapping, Organisation]:
        """Run one action in one transaction: visibility, permission, state, change, outbox."""
        now = self.clock.now()
        try:
            async with self.engine.begin() as conn:
                case, org = await self._visible(conn, staff, case_id)
                _check(staff, case, org, action)
                move = await build(conn, case, org, _after(action, case["status"]))
                await apply(conn, case, move, now=now)
                fresh = await get_case(conn, case["id"])
                assert fresh is not None
        except IllegalTransition as exc:
            raise _refused(action, exc.current_status) from exc
        except CaseConflict as exc:
            raise _refused(action, exc.current_status, concurrent=True) from exc
        self._after_commit()
        self._wake_sweep()
        return fresh, org

    def _env(self, case: RowMapping, kind: str) -> dict[str, Any]:
        return envelope(
            case,
            kind=kind,
            rung=case["rung"],
            seq=case["version"] + 1,
            now=self.clock.now(),
            causation_id=None,
        )

    async def accept(self, staff: Staff, *, case_id: str) -> tuple[RowMapping, Organisation]:
        """The holder acknowledges the case: the acknowledgement deadline ends."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            event = CaseAccepted(**self._env(case, "accepted"), member_id=_mid(staff))
            return Move(
                values={"status": status, "ack_due_at": None},
                entries=[Entry(event, "accepted", actor=staff.username, member_id=_mid(staff))],
                cancel="ack",
            )

        return await self._act(staff, case_id, "accept", build)

    async def add_note(
        self, staff: Staff, *, case_id: str, note: str
    ) -> tuple[RowMapping, Organisation]:
        """A note for whoever handles the case; the status does not change."""
        note = _required(note, 5000, "ghi chú", "note")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            event = CaseNoteAdded(**self._env(case, "note"), member_id=_mid(staff), note=note)
            await conn.execute(
                models.notes.insert().values(
                    case_id=case["id"],
                    event_id=str(event.event_id),
                    member_id=_mid(staff),
                    note=note,
                    at=self.clock.now(),
                )
            )
            entry = Entry(event, "note", actor=staff.username, member_id=_mid(staff))
            return Move(values={}, entries=[entry], cancel=None)

        return await self._act(staff, case_id, "note", build)

    async def resolve(
        self, staff: Staff, *, case_id: str, explanation: str
    ) -> tuple[RowMapping, Organisation]:
        """Resolve with an explanation. Resolving a case not yet accepted accepts it first:
        both events go out together, so everyone downstream sees the usual order."""
        explanation = _required(explanation, 5000, "giải thích", "explanation")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            return _resolution(staff, case, status, explanation, self._env)

        return await self._act(staff, case_id, "resolve", build)

    async def reassign(
        self, staff: Staff, *, case_id: str, member_id: str | None, username: str | None = None
    ) -> tuple[RowMapping, Organisation]:
        """A leader (or an administrator) hands the case to someone who serves its unit or a
        unit above it; the rung follows the new holder."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            target = org.member(member_id) if member_id else org.by_username(username or "")
            rung = org.rung_of(target, case["unit_id"], case["category_id"]) if target else None
            if target is None or target.role == "admin" or not target.active or rung is None:
                raise InvalidInput(
                    "Người được chọn không phục vụ đơn vị này; hãy chọn người trong danh sách.",
                    "The member chosen does not serve this unit; choose someone from the list.",
                    type_="urn:petitions:problem:bad-assignee",
                )
            choice = Choice(target, rung, target.unit_id, "initial")
            now = self.clock.now()
            return move_to(case, choice, org, now, reason="reassigned", actor=staff.username)

        return await self._act(staff, case_id, "reassign", build)

    async def decline(
        self, staff: Staff, *, case_id: str, reason_code: DeclineReason, comment: str | None
    ) -> tuple[RowMapping, Organisation]:
        """The holder hands the case back with a reason; it goes at once to whoever holds it
        next (`assignment.next_search`: someone else at the rung who has not declined it, the
        leader after too many declines), or waits unassigned when nobody can."""
        comment = _comment(comment)

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            event = CaseDeclined(
                **self._env(case, "declined"),
                member_id=_mid(staff),
                reason_code=reason_code,
                comment=comment,
            )
            entry = Entry(
                event,
                "declined",
                actor=staff.username,
                member_id=_mid(staff),
                rung=case["rung"],
                detail={"reason_code": reason_code, "comment": comment},
            )
            return await self._hand_back(conn, staff, case, org, entry)

        return await self._act(staff, case_id, "decline", build)

    async def _hand_back(
        self,
        conn: AsyncConnection,
        staff: Staff,
        case: RowMapping,
        org: Organisation,
        entry: Entry,
    ) -> Move:
        now = self.clock.now()
        choice = org.next_holder(
            "declined",
            rung=case["rung"],
            unit_id=case["unit_id"],
            category_id=case["category_id"],
            now=now,
            leaving=_mid(staff),
            decliners=await decliners(conn, case["id"]),
        )
        if choice is None:
            return unheld([entry])
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

    async def ask(
        self, staff: Staff, *, case_id: str, question: str
    ) -> tuple[RowMapping, Organisation]:
        """Ask the resident for information (shown on their tracking page): the deadline clock
        stops until they answer, or at most the policy's longest wait."""
        question = _required(question, 2000, "câu hỏi", "question")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            return pause(
                case,
                org,
                self.clock.now(),
                member_id=_mid(staff),
                question=question,
                actor=staff.username,
            )

        return await self._act(staff, case_id, "ask", build)

    async def escalate(
        self, staff: Staff, *, case_id: str, comment: str | None
    ) -> tuple[RowMapping, Organisation]:
        """A leader moves the case one rung up (or further while nobody can take a rung)."""
        comment = _comment(comment)

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            move = escalate(
                case, org, self.clock.now(), reason="leader_decision", actor=staff.username
            )
            if move is None:
                raise Refused(
                    "Hồ sơ đã ở cấp cao nhất, không thể chuyển lên nữa; hãy tự tiếp nhận hoặc "
                    "giao lại cho người phù hợp.",
                    "The case is already at the top rung and cannot go higher; take it over "
                    "or reassign it to someone suitable.",
                    type_="urn:petitions:problem:top-rung",
                    current_status=case["status"],
                )
            if comment:
                move.entries[0].detail["comment"] = comment
            return move

        return await self._act(staff, case_id, "escalate", build)

    async def take_over(self, staff: Staff, *, case_id: str) -> tuple[RowMapping, Organisation]:
        """A leader takes the case on themselves, at their own rung; taking it from a lower
        rung is an escalation by decision."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            me = org.member(staff.member_id or "")
            rung = org.rung_of(me, case["unit_id"], case["category_id"]) if me else None
            if me is None or rung is None:
                # A leader whose unit holds no rung of this case's ladder.
                raise NotPermitted(*WHO_MAY["take-over"])
            return move_to(
                case,
                Choice(me, rung, me.unit_id, "initial"),
                org,
                self.clock.now(),
                reason="escalated" if rung > case["rung"] else "reassigned",
                escalation="leader_decision",
                actor=staff.username,
                acknowledged=True,
            )

        return await self._act(staff, case_id, "take-over", build)

    async def reject(
        self, staff: Staff, *, case_id: str, reason: str
    ) -> tuple[RowMapping, Organisation]:
        """Leadership (a leader of a unit above the case's, or an administrator) rejects the
        petition with a reason: out of scope, abusive, a duplicate handled elsewhere."""
        reason = _required(reason, 2000, "lý do", "reason")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: Status
        ) -> Move:
            event = CaseRejected(**self._env(case, "rejected"), actor=staff.username, reason=reason)
            return Move(
                values={
                    "status": status,
                    "closed_at": self.clock.now(),
                    "due_at": None,
                    "ack_due_at": None,
                    "flag": None,
                },
                entries=[Entry(event, "rejected", actor=staff.username, detail={"reason": reason})],
            )

        return await self._act(staff, case_id, "reject", build)

    async def member(self, member_id: str) -> RowMapping | None:
        m = models.members
        async with self.engine.connect() as conn:
            return (await conn.execute(select(m).where(m.c.id == member_id))).mappings().first()

    async def set_absence(
        self, staff: Staff, *, member_id: str, from_: datetime | None, until: datetime | None
    ) -> None:
        """Mark a member away (or, with no `from_`, back): they get no new cases while away,
        and their open cases go to the leader when the absence starts (`permissions.
        may_mark_away` says who may mark whom)."""
        if from_ is not None and until is not None and until <= from_:
            raise InvalidInput("Ngày về phải sau ngày đi.", "'until' must be after 'from'.")
        m = models.members
        async with self.engine.begin() as conn:
            org = await load_organisation(conn, self.ladder, member_ids=())
            target = org.member(member_id)
            if target is None:
                raise MemberNotFound("Không có thành viên này.", "No such member.")
            if not may_mark_away(staff, member_id, org.chain(target.unit_id)):
                raise NotPermitted(*WHO_MAY["reassign"])
            await conn.execute(
                update(m)
                .where(m.c.id == member_id)
                .values(
                    away_from=from_,
                    away_until=until if from_ is not None else None,
                    absence_applied_from=None,
                )
            )
        self._wake_sweep()


def _scope(staff: Staff, scope: Literal["mine", "unit"], org: Organisation) -> list[Any]:
    """Which cases a listing covers: the caller's own, or (leaders) their unit and below."""
    k = models.cases
    if scope == "mine":
        return [k.c.holder_member_id == staff.member_id]
    if not may_list_unit(staff):
        raise NotPermitted(
            "Chỉ lãnh đạo đơn vị xem được hồ sơ của đơn vị.",
            "Only unit leaders see the unit's cases.",
        )
    if staff.is_admin or staff.unit_id is None:
        return []
    return [k.c.unit_id.in_(org.subtree(staff.unit_id))]


def _resolution(
    staff: Staff,
    case: RowMapping,
    status: Status,
    explanation: str,
    env: Callable[[RowMapping, str], dict[str, Any]],
) -> Move:
    """The resolving move: an implicit accept first when the case was only assigned, then the
    resolution. Nothing is due while the resident is asked to confirm: every deadline of the
    rung ends here, in the same transaction, so a resolved case never escalates."""
    entries = []
    if case["status"] == "assigned":
        accepted = CaseAccepted(**env(case, "accepted"), member_id=_mid(staff))
        entries.append(Entry(accepted, "accepted", actor=staff.username, member_id=_mid(staff)))
    event = CaseResolved(**env(case, "resolved"), member_id=_mid(staff), explanation=explanation)
    entries.append(
        Entry(
            event,
            "resolved",
            actor=staff.username,
            member_id=_mid(staff),
            detail={"explanation": explanation},
        )
    )
    values = {
        "status": status,
        "due_at": None,
        "ack_due_at": None,
        "flag": None,
        "question_id": None,
        "paused_remaining_s": None,
    }
    return Move(values=values, entries=entries)
