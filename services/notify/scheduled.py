"""Time-driven work: before each unit's meeting its members get a digest of the unit's cases
(open, overdue, escalated and resolved since the last meeting, per member), by email or their
preferred channel, in their in-app inbox, and as a printable page. The unit's leaders read all of
it; every other member only their own line, the cases they held (the one scope rule,
`shared.scope`).

The loop looks at the schedule every `schedule_poll_s` by the service's clock (injectable, so
tests move time by hand). A digest is made once per unit and meeting: the `digests` row is
unique on both, and its notifications are queued in the same transaction.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.worker import Worker

from .access import digest_for
from .config import Meeting
from .directory import Directory, Member
from .facts import OPEN_STATUSES
from .models import digests, petition_facts
from .notifications import PlannedNotification
from .queueing import Queueing, queue_planned

log = structlog.get_logger(__name__)


def _candidates(meeting: Meeting, zone: ZoneInfo, around: datetime) -> list[datetime]:
    local = around.astimezone(zone)
    days = []
    if meeting.day_of_month is not None:
        year, month = local.year, local.month
        for offset in range(-2, 3):
            y, m = divmod((month - 1) + offset, 12)
            y, m = year + y, m + 1
            last = calendar.monthrange(y, m)[1]
            days.append((y, m, min(meeting.day_of_month, last)))
    else:
        for offset in range(-15, 16):
            d = (local + timedelta(days=offset)).date()
            if d.weekday() == meeting.weekday:
                days.append((d.year, d.month, d.day))
    at = meeting.at
    return sorted(datetime(y, m, d, at.hour, at.minute, tzinfo=zone) for y, m, d in days)


def meeting_window(meeting: Meeting, zone: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """The previous meeting and the next one after `now` (aware, in `zone`)."""
    times = _candidates(meeting, zone, now)
    upcoming = next(t for t in times if t > now)
    previous = max(t for t in times if t < upcoming)
    return previous, upcoming


def digest_due(meeting: Meeting, zone: ZoneInfo, now: datetime) -> tuple[datetime, datetime] | None:
    """(since, meeting_at) when the digest of the next meeting should go out now."""
    previous, upcoming = meeting_window(meeting, zone, now)
    if now >= upcoming - timedelta(hours=meeting.digest_hours_before):
        return previous, upcoming
    return None


@dataclass(frozen=True)
class FactRow:
    petition_id: str
    reference: str | None
    title: str | None
    origin_unit_id: str | None
    status: str
    member_id: str | None
    rung: int | None
    due_at: datetime | None
    rungs: list[dict[str, Any]]


SECTIONS = ("open", "overdue", "escalated", "resolved")


class _Sections:
    """A digest's cases per member and section, with the totals; members without a case still
    get their (empty) lines."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.names = {m.id: m.name for m in members}
        self.per: dict[str, dict[str, list[dict[str, Any]]]] = {
            m.id: {name: [] for name in SECTIONS} for m in members
        }
        self.totals = dict.fromkeys(SECTIONS, 0)

    def add(self, member_id: str, name: str | None, section: str, entry: dict[str, Any]) -> None:
        if member_id not in self.per:
            self.names[member_id] = name or member_id
            self.per[member_id] = {s: [] for s in SECTIONS}
        self.per[member_id][section].append(entry)
        self.totals[section] += 1

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"member_id": mid, "name": self.names.get(mid, mid), **sections}
            for mid, sections in self.per.items()
        ]


def _digest_item(
    f: FactRow, case_link: Callable[[str | None], str], **extra: Any
) -> dict[str, Any]:
    case_id = next((r.get("case_id") for r in f.rungs if r.get("case_id")), None)
    return {
        "reference": f.reference or f.petition_id[:8].upper(),
        "title": f.title or "",
        "rung": f.rung,
        "due_at": f.due_at.isoformat() if f.due_at else None,
        "status": f.status,
        "link": case_link(case_id),
        **extra,
    }


def _sort_case(
    sections: _Sections,
    f: FactRow,
    *,
    unit_id: str,
    since: datetime,
    now: datetime,
    case_link: Callable[[str | None], str],
) -> None:
    """An open case goes under its holder (and under overdue past its deadline); what was
    escalated or resolved at the unit since the last meeting, under who held it then."""
    holder = f.rungs[-1] if f.rungs else None
    if f.status in OPEN_STATUSES and holder is not None:
        entry = _digest_item(f, case_link)
        sections.add(holder["member_id"], holder.get("member_name"), "open", entry)
        if f.due_at is not None and f.due_at < now:
            sections.add(holder["member_id"], holder.get("member_name"), "overdue", entry)
    for r in f.rungs:
        ended = datetime.fromisoformat(r["ended_at"]) if r.get("ended_at") else None
        if r["unit_id"] != unit_id or ended is None or ended < since:
            continue
        if r["outcome"] in ("escalated", "resolved"):
            entry = _digest_item(f, case_link, at=ended.isoformat(), on_time=r.get("on_time"))
            sections.add(r["member_id"], r.get("member_name"), r["outcome"], entry)


def build_digest(
    *,
    unit_id: str,
    unit_name: str,
    members: Sequence[Member],
    facts: Sequence[FactRow],
    since: datetime,
    meeting_at: datetime,
    now: datetime,
    case_link: Callable[[str | None], str],
) -> dict[str, Any]:
    """The digest of one unit: its open, overdue, escalated and resolved-since cases, per member.

    A case belongs to the unit when the resident lives there or the unit held it at some rung;
    open cases are listed under their holder, escalations and resolutions under the member who
    held the case at the unit when it happened."""
    sections = _Sections(members)
    for f in facts:
        if f.origin_unit_id == unit_id or any(r["unit_id"] == unit_id for r in f.rungs):
            _sort_case(sections, f, unit_id=unit_id, since=since, now=now, case_link=case_link)
    return {
        "unit_id": unit_id,
        "unit_name": unit_name,
        "meeting_at": meeting_at.isoformat(),
        "since": since.isoformat(),
        "generated_at": now.isoformat(),
        "totals": sections.totals,
        "members": sections.rows(),
    }


class Scheduler:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        directory: Directory,
        queueing: Queueing,
        public_url: str,
        poll_s: float,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._directory = directory
        self._q = queueing
        self._public_url = public_url.rstrip("/")
        self._after_commit = after_commit
        self._loop = Worker("notify-schedule", self._step, idle_s=poll_s)

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _step(self) -> bool:
        await self.tick()
        return False

    async def tick(self) -> list[int]:
        """Make every digest that is due now; returns the ids of those made."""
        made = []
        now = self._q.clock.now()
        for unit_id, meeting in self._q.config.meetings.items():
            due = digest_due(meeting, self._q.config.zone, now)
            if due is None:
                continue
            try:
                digest_id = await self.make_digest(
                    unit_id, meeting, since=due[0], meeting_at=due[1]
                )
            except Exception:
                # Routing may be down: the next round tries again.
                log.exception("digest_failed", unit_id=unit_id)
                continue
            if digest_id is not None:
                made.append(digest_id)
        if made and self._after_commit is not None:
            self._after_commit()
        return made

    async def preview(self, unit_id: str, meeting: Meeting) -> dict[str, Any]:
        """The digest of the next meeting as it stands now (not stored, not sent)."""
        now = self._q.clock.now()
        since, meeting_at = meeting_window(meeting, self._q.config.zone, now)
        members = await self._directory.members(unit_id=unit_id)
        return await self._content(unit_id, meeting, members, since, meeting_at, now)

    async def _content(
        self,
        unit_id: str,
        meeting: Meeting,
        members: Sequence[Member],
        since: datetime,
        meeting_at: datetime,
        now: datetime,
    ) -> dict[str, Any]:
        pf = petition_facts
        async with self._engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(pf).where(
                            or_(pf.c.status.in_(OPEN_STATUSES), pf.c.updated_at >= since)
                        )
                    )
                )
                .mappings()
                .all()
            )
        facts = [
            FactRow(
                petition_id=r["petition_id"],
                reference=r["reference"],
                title=r["title"],
                origin_unit_id=r["origin_unit_id"],
                status=r["status"],
                member_id=r["member_id"],
                rung=r["rung"],
                due_at=r["due_at"],
                rungs=json.loads(r["rungs"]),
            )
            for r in rows
        ]
        return build_digest(
            unit_id=unit_id,
            unit_name=meeting.name or unit_id,
            members=members,
            facts=facts,
            since=since,
            meeting_at=meeting_at,
            now=now,
            case_link=self._q.case_link,
        )

    async def make_digest(
        self, unit_id: str, meeting: Meeting, *, since: datetime, meeting_at: datetime
    ) -> int | None:
        """Store and send the digest for this meeting, once; None if it was made already."""
        d = digests
        async with self._engine.connect() as conn:
            exists = await conn.scalar(
                select(d.c.id).where(d.c.unit_id == unit_id, d.c.meeting_at == meeting_at)
            )
        if exists is not None:
            return None
        now = self._q.clock.now()
        members = await self._directory.members(unit_id=unit_id)
        content = await self._content(unit_id, meeting, members, since, meeting_at, now)
        async with self._engine.begin() as conn:
            added = await _store_digest(
                conn,
                {
                    "unit_id": unit_id,
                    "meeting_at": meeting_at,
                    "since": since,
                    "created_at": now,
                    "content": json.dumps(content, ensure_ascii=False),
                },
            )
            if added is None:
                return None
            link = f"{self._public_url}/digests/{added}"
            for member in members:
                # Each reads what the scope rule lets them see: the unit's leaders all of it,
                # a member their own line (`access.digest_for`).
                whole = member.role == "leader" and member.unit_id == unit_id
                view = digest_for(content, whole=whole, member_id=member.id)
                planned = PlannedNotification(
                    recipient_kind="member",
                    recipient_ref=member.id,
                    template="meeting_digest",
                    context={**view, "link": link},
                    recipient_address=member.email or "",
                    recipient_name=member.name,
                )
                await queue_planned(
                    conn,
                    self._q,
                    petition_id=None,
                    transition=f"digest-{added}",
                    planned=planned,
                    facts_context={"reference": None},
                )
        log.info("digest_made", unit_id=unit_id, digest_id=added, members=len(members))
        return added


async def _store_digest(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """Insert the digest row; None when this unit's meeting has one already."""
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = (
        insert(digests)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["unit_id", "meeting_at"])
        .returning(digests.c.id)
    )
    value = (await conn.execute(stmt)).scalar()
    return int(value) if value is not None else None
