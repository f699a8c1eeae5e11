"""What staff do with cases, shared by the JSON API and the workspace pages, so both enforce
the same rules and write the same events.

Members see the cases they hold or held; leaders also every case of their unit and the units
below it; administrators see everything. Each action is a compare-and-set transition whose
events go out through the outbox in the same transaction. Refusals are `ActionError`s carrying
a Vietnamese and an English sentence; the HTTP edge turns them into problem details, the pages
into a message on the same page.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
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
from services.routing.ladder import Ladder
from services.routing.lifecycle import (
    Action,
    IllegalTransition,
    Status,
    explain_refusal,
    transition,
)
from services.routing.transitions import Move, apply, escalate, move_to, pause
from shared.auth import Staff
from shared.clock import Clock
from shared.events import CaseAccepted, CaseDeclined, CaseNoteAdded, CaseRejected, CaseResolved
from shared.events.routing import DeclineReason

Lang = Literal["vi", "en"]

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")


class ActionError(Exception):
    """A refused request, said in Vietnamese and English."""

    status: ClassVar[int] = 400
    default_type: ClassVar[str] = "about:blank"

    def __init__(self, vi: str, en: str, *, type_: str | None = None, **extra: Any) -> None:
        super().__init__(f"{vi} / {en}")
        self.vi = vi
        self.en = en
        self.type = type_ or self.default_type
        self.extra = extra

    @property
    def bilingual(self) -> str:
        return f"{self.vi} / {self.en}"

    def text(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.vi


class CaseNotFound(ActionError):
    status = 404


class NotPermitted(ActionError):
    status = 403


class Refused(ActionError):
    """The case's state does not allow the action now (409)."""

    status = 409
    default_type = "urn:petitions:problem:illegal-transition"


class InvalidInput(ActionError):
    status = 422
    default_type = "urn:petitions:problem:validation"


class BadCredentials(ActionError):
    status = 401
    default_type = "urn:petitions:problem:bad-credentials"


class TooManyAttempts(ActionError):
    status = 429
    default_type = "urn:petitions:problem:too-many-attempts"


def _no_case() -> CaseNotFound:
    return CaseNotFound("Không tìm thấy hồ sơ.", "No such case.")


def _leaders_only() -> NotPermitted:
    return NotPermitted(
        "Chỉ lãnh đạo đơn vị được làm việc này.", "Only a leader of the unit may do this."
    )


@dataclass
class SignInThrottle:
    """At most `max_failures` wrong passwords per username and client address in `window_s`
    seconds; the next attempts are refused until the oldest failure ages out.

    Kept in memory: each replica counts on its own and a restart forgets, which is enough to
    make guessing a password slow without adding a store. The address is the TCP peer, so
    behind a reverse proxy every resident shares it and only the username half keys.
    """

    max_failures: int = 5
    window_s: float = 15 * 60
    now: Callable[[], float] = time.monotonic
    _failures: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def _recent(self, key: tuple[str, str]) -> list[float]:
        cutoff = self.now() - self.window_s
        kept = [t for t in self._failures.get(key, ()) if t > cutoff]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, username: str, client: str) -> bool:
        return len(self._recent((username, client))) >= self.max_failures

    def failed(self, username: str, client: str) -> None:
        if len(self._failures) > 10_000:
            # Bound the memory an attacker can make us hold: forget whatever has aged out.
            for key in list(self._failures):
                self._recent(key)
        self._failures.setdefault((username, client), []).append(self.now())

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username, client), None)


@dataclass(frozen=True)
class CaseView:
    """A case with what the caller may do to it."""

    case: RowMapping
    org: Organisation
    may_act: bool
    leads: bool
    leadership: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def leads(staff: Staff, case: RowMapping, org: Organisation) -> bool:
    """A leader of the case's unit or of a unit above it; an administrator."""
    if staff.is_admin:
        return True
    return (
        staff.role == "leader"
        and staff.unit_id is not None
        and staff.unit_id in org.chain(case["unit_id"])
    )


def leadership(staff: Staff, case: RowMapping, org: Organisation) -> bool:
    """An administrator, or a leader of a unit above the case's own (the ward and up)."""
    if staff.is_admin:
        return True
    return (
        staff.role == "leader"
        and staff.unit_id is not None
        and staff.unit_id in org.chain(case["unit_id"])[1:]
    )


def may_act(staff: Staff, case: RowMapping, org: Organisation) -> bool:
    return case["holder_member_id"] == staff.member_id or leads(staff, case, org)


def visible_units(
    parents: dict[str, str | None], role: str, unit_id: str | None
) -> tuple[str, ...]:
    """The units whose petitions a person may see: a leader's unit and every unit below it, a
    member's own unit; an administrator sees every unit without a list."""
    if role == "admin" or unit_id is None:
        return ()
    if role == "leader":
        below = [u for u in parents if _descends(u, unit_id, parents)]
        return tuple(sorted(below))
    return (unit_id,)


def _descends(unit: str, ancestor: str, parents: dict[str, str | None]) -> bool:
    seen: set[str] = set()
    current: str | None = unit
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


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


Build = Callable[[AsyncConnection, RowMapping, Organisation, str], Awaitable[Move]]


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
        self.throttle = throttle or SignInThrottle()

    async def sign_in(self, *, username: str, password: str, client: str) -> Staff:
        """The staff member behind a username and password, with the units they may see.
        Wrong credentials and too many recent failures are refused alike for every username."""
        username = username.strip().lower()
        if self.throttle.blocked(username, client):
            raise TooManyAttempts(
                "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 15 phút.",
                "Too many failed sign-ins. Please try again in 15 minutes.",
            )
        m, u = models.members, models.units
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(m).where(m.c.username == username))).mappings().first()
            parents = {r.id: r.parent_id for r in (await conn.execute(select(u))).all()}
        ok = await asyncio.to_thread(
            _verify, row["password_hash"] if row else _DUMMY_HASH, password
        )
        if row is None or not ok or not row["active"]:
            self.throttle.failed(username, client)
            raise BadCredentials("Sai tên đăng nhập hoặc mật khẩu.", "Wrong username or password.")
        self.throttle.succeeded(username, client)
        return Staff(
            username=row["username"],
            member_id=row["id"],
            role=row["role"],
            unit_id=row["unit_id"],
            name=row["name"],
            units=visible_units(parents, row["role"], row["unit_id"]),
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
            conditions: list[Any] = []
            if scope == "mine":
                conditions.append(k.c.holder_member_id == staff.member_id)
            elif not staff.is_admin:
                if staff.role != "leader" or staff.unit_id is None:
                    raise NotPermitted(
                        "Chỉ lãnh đạo đơn vị xem được hồ sơ của đơn vị.",
                        "Only unit leaders see the unit's cases.",
                    )
                conditions.append(k.c.unit_id.in_(org.subtree(staff.unit_id)))
            if petition_id is not None:
                conditions.append(k.c.petition_id == petition_id)
            if statuses is not None:
                conditions.append(k.c.status.in_(list(statuses)))
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
        if not may_act(staff, case, org) and staff.member_id not in await past_holders(
            conn, case["id"]
        ):
            # Not "forbidden": whether a case exists is itself not for everyone to know.
            raise _no_case()
        return case, org

    async def view(self, staff: Staff, case_id: str) -> CaseView:
        """A case the caller may see, with its history and notes."""
        n = models.notes
        async with self.engine.connect() as conn:
            case, org = await self._visible(conn, staff, case_id)
            notes = [
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
            lines = await history(conn, case["id"])
        return CaseView(
            case=case,
            org=org,
            may_act=may_act(staff, case, org),
            leads=leads(staff, case, org),
            leadership=leadership(staff, case, org),
            history=lines,
            notes=notes,
        )

    async def _act(
        self,
        staff: Staff,
        case_id: str,
        name: str,
        after: Callable[[str], Status],
        build: Build,
    ) -> tuple[RowMapping, Organisation]:
        """Run one action in one transaction: visibility, permission, state, change, outbox."""
        now = self.clock.now()
        try:
            async with self.engine.begin() as conn:
                case, org = await self._visible(conn, staff, case_id)
                if not may_act(staff, case, org):
                    raise NotPermitted(
                        "Chỉ người đang giữ hồ sơ hoặc lãnh đạo đơn vị được làm việc này.",
                        "Only the member holding the case or a unit leader may do this.",
                    )
                move = await build(conn, case, org, after(case["status"]))
                await apply(conn, case, move, now=now)
                fresh = await get_case(conn, case["id"])
                assert fresh is not None
        except IllegalTransition as exc:
            raise _refused(name, exc.current_status) from exc
        except CaseConflict as exc:
            raise _refused(name, exc.current_status, concurrent=True) from exc
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
        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            event = CaseAccepted(**self._env(case, "accepted"), member_id=_mid(staff))
            return Move(
                values={"status": status, "ack_due_at": None},
                entries=[Entry(event, "accepted", actor=staff.username, member_id=_mid(staff))],
                cancel="ack",
            )

        return await self._act(staff, case_id, "accept", _step("accept"), build)

    async def add_note(
        self, staff: Staff, *, case_id: str, note: str
    ) -> tuple[RowMapping, Organisation]:
        note = _required(note, 5000, "ghi chú", "note")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
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
            return Move(
                values={},
                entries=[Entry(event, "note", actor=staff.username, member_id=_mid(staff))],
                cancel=None,
            )

        return await self._act(staff, case_id, "note", _step("note"), build)

    async def resolve(
        self, staff: Staff, *, case_id: str, explanation: str
    ) -> tuple[RowMapping, Organisation]:
        """Resolve with an explanation. Resolving a case not yet accepted accepts it first:
        both events go out together, so everyone downstream sees the usual order."""
        explanation = _required(explanation, 5000, "giải thích", "explanation")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            entries = []
            if case["status"] == "assigned":
                accepted = CaseAccepted(**self._env(case, "accepted"), member_id=_mid(staff))
                entries.append(
                    Entry(accepted, "accepted", actor=staff.username, member_id=_mid(staff))
                )
            event = CaseResolved(
                **self._env(case, "resolved"), member_id=_mid(staff), explanation=explanation
            )
            entries.append(
                Entry(
                    event,
                    "resolved",
                    actor=staff.username,
                    member_id=_mid(staff),
                    detail={"explanation": explanation},
                )
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
                entries=entries,
            )

        def after(current: str) -> Status:
            if current == "assigned":
                return transition(transition(current, "accept"), "resolve")
            return transition(current, "resolve")

        return await self._act(staff, case_id, "resolve", after, build)

    async def reassign(
        self, staff: Staff, *, case_id: str, member_id: str | None, username: str | None = None
    ) -> tuple[RowMapping, Organisation]:
        """A leader (or an administrator) hands the case to someone who serves its unit or a
        unit above it; the rung follows the new holder."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if not leads(staff, case, org):
                raise _leaders_only()
            target = org.member(member_id) if member_id else org.by_username(username or "")
            rung = org.rung_of(target, case["unit_id"], case["category_id"]) if target else None
            if target is None or target.role == "admin" or not target.active or rung is None:
                raise InvalidInput(
                    "Người được chọn không phục vụ đơn vị này; hãy chọn người trong danh sách.",
                    "The member chosen does not serve this unit; choose someone from the list.",
                    type_="urn:petitions:problem:bad-assignee",
                )
            return move_to(
                case,
                Choice(target, rung, target.unit_id, "initial"),
                org,
                self.clock.now(),
                reason="reassigned",
                actor=staff.username,
            )

        return await self._act(staff, case_id, "reassign", _step("assign"), build)

    async def decline(
        self, staff: Staff, *, case_id: str, reason_code: DeclineReason, comment: str | None
    ) -> tuple[RowMapping, Organisation]:
        """The holder hands the case back with a reason; it goes at once to someone else at the
        rung who has not declined it, else one rung up. A case declined too often at the first
        rung goes to the unit's leader instead of bouncing between members."""
        comment = (comment or "").strip()[:2000] or None

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if case["holder_member_id"] != staff.member_id:
                raise NotPermitted(
                    "Chỉ người đang giữ hồ sơ mới trả lại được.",
                    "Only the member holding the case may decline it.",
                )
            now = self.clock.now()
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
            before = await decliners(conn, case["id"])
            rung = case["rung"]
            if rung == 0 and len(before) >= self.ladder.policy.declines_before_leader:
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

        return await self._act(staff, case_id, "decline", _step("decline"), build)

    async def ask(
        self, staff: Staff, *, case_id: str, question: str
    ) -> tuple[RowMapping, Organisation]:
        """Ask the resident for information (shown on their tracking page): the deadline clock
        stops until they answer, or at most the policy's longest wait."""
        question = _required(question, 2000, "câu hỏi", "question")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            return pause(
                case,
                org,
                self.clock.now(),
                member_id=_mid(staff),
                question=question,
                actor=staff.username,
            )

        return await self._act(staff, case_id, "ask", _step("ask"), build)

    async def escalate(
        self, staff: Staff, *, case_id: str, comment: str | None
    ) -> tuple[RowMapping, Organisation]:
        """A leader moves the case one rung up (or further while nobody can take a rung)."""
        comment = (comment or "").strip()[:2000] or None

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if not leads(staff, case, org):
                raise _leaders_only()
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

        return await self._act(staff, case_id, "escalate", _step("assign"), build)

    async def take_over(self, staff: Staff, *, case_id: str) -> tuple[RowMapping, Organisation]:
        """A leader takes the case on themselves, at their own rung; taking it from a lower
        rung is an escalation by decision."""

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            me = org.member(staff.member_id or "")
            rung = org.rung_of(me, case["unit_id"], case["category_id"]) if me else None
            if me is None or me.role != "leader" or not leads(staff, case, org) or rung is None:
                raise _leaders_only()
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

        return await self._act(staff, case_id, "take_over", _step("assign"), build)

    async def reject(
        self, staff: Staff, *, case_id: str, reason: str
    ) -> tuple[RowMapping, Organisation]:
        """Leadership (a leader of a unit above the case's, or an administrator) rejects the
        petition with a reason: out of scope, abusive, a duplicate handled elsewhere."""
        reason = _required(reason, 2000, "lý do", "reason")

        async def build(
            conn: AsyncConnection, case: RowMapping, org: Organisation, status: str
        ) -> Move:
            if not leadership(staff, case, org):
                raise NotPermitted(
                    "Chỉ lãnh đạo cấp trên (phường, xã) được từ chối xử lý.",
                    "Only ward or commune leadership may reject a case.",
                )
            now = self.clock.now()
            event = CaseRejected(**self._env(case, "rejected"), actor=staff.username, reason=reason)
            return Move(
                values={
                    "status": status,
                    "closed_at": now,
                    "due_at": None,
                    "ack_due_at": None,
                    "flag": None,
                },
                entries=[Entry(event, "rejected", actor=staff.username, detail={"reason": reason})],
            )

        return await self._act(staff, case_id, "reject", _step("reject"), build)

    async def member(self, member_id: str) -> RowMapping | None:
        m = models.members
        async with self.engine.connect() as conn:
            return (await conn.execute(select(m).where(m.c.id == member_id))).mappings().first()

    async def set_absence(
        self, staff: Staff, *, member_id: str, from_: datetime | None, until: datetime | None
    ) -> None:
        """Mark a member away (or, with no `from_`, back): they get no new cases while away,
        and their open cases go to the leader when the absence starts. Members mark themselves;
        leaders of the member's unit or above and administrators mark anyone."""
        if from_ is not None and until is not None and until <= from_:
            raise InvalidInput("Ngày về phải sau ngày đi.", "'until' must be after 'from'.")
        m = models.members
        async with self.engine.begin() as conn:
            org = await load_organisation(conn, self.ladder, member_ids=())
            target = org.member(member_id)
            if target is None:
                raise CaseNotFound("Không có thành viên này.", "No such member.")
            allowed = (
                staff.is_admin
                or staff.member_id == member_id
                or (
                    staff.role == "leader"
                    and staff.unit_id is not None
                    and staff.unit_id in org.chain(target.unit_id)
                )
            )
            if not allowed:
                raise _leaders_only()
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


def _step(action: Action) -> Callable[[str], Status]:
    return lambda current: transition(current, action)


def _refused(name: str, status: str, *, concurrent: bool = False) -> Refused:
    vi, en = explain_refusal(name, status, concurrent=concurrent)
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
