"""`petitions ladder simulate`: what a changed ladder or calendar would have done to past cases.

Each case opened since a date is replayed from its history: its first placement, the holders'
acknowledgements, questions and answers, resolutions, and the moves that did not come from a
deadline (a resident's "not resolved" or request, a leader's decision, a decline, an absence)
happen when they happened; the deadlines, and so the escalations they cause, come from the
ladder and calendar under test. The report counts escalations per unit and rung next to what
the real sweep did. People's availability at the time is not known, so a simulated escalation
goes one rung up as long as the ladder has one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.routing import models
from services.routing.calendar import WorkingCalendar
from services.routing.cases import Organisation, load_organisation
from services.routing.ladder import Ladder, load_ladder_file, with_calendar_file

# Escalations the sweep makes; every other move is replayed as it happened.
_BY_DEADLINE = "deadline_passed"
_RESTARTS = ("reassigned", "declined", "absent", "reopened")
_STOPS = ("resolved", "closed", "withdrawn", "rejected")

Key = tuple[str, int, int]


@dataclass
class SimulationReport:
    since: datetime
    until: datetime
    ladder: str
    cases: int = 0
    # (unit, from rung, to rung) → escalations by deadline.
    would: Counter[Key] = field(default_factory=Counter)
    did: Counter[Key] = field(default_factory=Counter)
    # unit → cases that end overdue at the top rung.
    would_top: Counter[str] = field(default_factory=Counter)
    did_top: Counter[str] = field(default_factory=Counter)
    # Escalations not caused by a deadline, by reason: the same under any ladder.
    other: Counter[str] = field(default_factory=Counter)


@dataclass
class _Run:
    """One case's simulated state."""

    org: Organisation
    unit: str
    category: str
    rung: int = 0
    active: bool = False
    paused: bool = False
    acknowledged: bool = False
    at_top: bool = False
    ack_due: datetime | None = None
    due: datetime | None = None
    left: timedelta | None = None
    escalations: list[Key] = field(default_factory=list)

    def place(self, rung: int, at: datetime) -> None:
        plan = self.org.plan(unit_id=self.unit, category_id=self.category, rung=rung, start=at)
        self.rung, self.active, self.paused, self.acknowledged = rung, True, False, False
        self.ack_due, self.due, self.at_top = plan.ack_due_at, plan.due_at, False

    def advance(self, until: datetime) -> None:
        """Let the deadlines that pass before `until` escalate."""
        top = self.org.top_rung(self.unit, self.category)
        while self.active and not self.paused and not self.at_top:
            assert self.due is not None
            nxt = (
                self.due
                if self.acknowledged or self.ack_due is None
                else min(self.ack_due, self.due)
            )
            if nxt > until:
                return
            if self.rung >= top:
                self.at_top = True
                return
            self.escalations.append((self.unit, self.rung, self.rung + 1))
            self.place(self.rung + 1, nxt)


async def simulate(
    engine: AsyncEngine,
    *,
    since: datetime | date,
    ladder_file: Path | None = None,
    calendar_file: Path | None = None,
    base_ladder: Path | None = None,
    until: datetime | None = None,
) -> SimulationReport:
    """Replay the cases opened since `since` against the ladder in `ladder_file` (else
    `base_ladder`, else the shipped one) with the calendars of `calendar_file` if given."""
    ladder: Ladder = load_ladder_file(ladder_file or base_ladder or _default_file())
    if calendar_file is not None:
        ladder = with_calendar_file(ladder, calendar_file)
    start = since if isinstance(since, datetime) else datetime.combine(since, time(0), tzinfo=UTC)
    end = until or datetime.now(UTC)
    report = SimulationReport(since=start, until=end, ladder=ladder.path)
    k, h = models.cases, models.case_history
    async with engine.connect() as conn:
        org = await load_organisation(conn, ladder, member_ids=())
        cases = (
            (await conn.execute(select(k).where(k.c.opened_at >= start).order_by(k.c.opened_at)))
            .mappings()
            .all()
        )
        for case in cases:
            rows = (
                (await conn.execute(select(h).where(h.c.case_id == case["id"]).order_by(h.c.id)))
                .mappings()
                .all()
            )
            report.cases += 1
            _replay(report, org, dict(case), [dict(r) for r in rows], end)
    return report


def _default_file() -> Path:
    from services.routing.ladder import DEFAULT_LADDER_FILE

    return DEFAULT_LADDER_FILE


def _replay(
    report: SimulationReport,
    org: Organisation,
    case: dict[str, Any],
    rows: list[dict[str, Any]],
    end: datetime,
) -> None:
    unit = case["unit_id"]
    run = _Run(org=org, unit=unit, category=case["category_id"])
    calendar = org.calendar(unit)
    for row in rows:
        if _counted_as_deadline_escalation(report, unit, row):
            continue
        run.advance(row["at"])
        _follow(run, org, calendar, row)
    run.advance(case["closed_at"] or end)
    for key in run.escalations:
        report.would[key] += 1
    if run.at_top:
        report.would_top[unit] += 1
    if any(r["kind"] == "overdue_at_top" for r in rows):
        report.did_top[unit] += 1


def _counted_as_deadline_escalation(
    report: SimulationReport, unit: str, row: dict[str, Any]
) -> bool:
    """An escalation the real sweep made because a deadline passed is what the simulated
    ladder decides for itself: count it as "did" and do not replay it. Escalations for other
    reasons are counted by reason and replayed."""
    if row["kind"] != "escalated":
        return False
    detail = row["detail"] or {}
    reason = detail.get("reason")
    if reason == _BY_DEADLINE:
        report.did[(unit, int(detail.get("from_rung", 0)), int(row["rung"] or 0))] += 1
        return True
    report.other[str(reason)] += 1
    return False


def _follow(run: _Run, org: Organisation, calendar: WorkingCalendar, row: dict[str, Any]) -> None:
    """Move the simulated case as the recorded history entry moved the real one."""
    kind, at = row["kind"], row["at"]
    if kind == "assigned":
        _assigned(run, row)
    elif kind == "escalated":
        run.place(max(run.rung, int(row["rung"] or 0)), at)
    elif kind == "accepted":
        run.acknowledged = True
    elif kind == "question_asked" and run.active and run.due is not None:
        run.left = calendar.working_between(at, run.due)
        run.paused = True
    elif kind == "resumed" and run.paused:
        plan = org.plan(
            unit_id=run.unit,
            category_id=run.category,
            rung=run.rung,
            start=at,
            remaining=run.left,
            acknowledged=True,
        )
        run.paused, run.acknowledged, run.due, run.ack_due = False, True, plan.due_at, None
    elif kind in _STOPS:
        run.active = False


def _assigned(run: _Run, row: dict[str, Any]) -> None:
    reason = (row["detail"] or {}).get("reason")
    rung, at = int(row["rung"] or 0), row["at"]
    if reason in ("initial", "no_member"):
        run.place(rung, at)
    elif reason == "reopened":
        run.place(max(run.rung, rung), at)
    elif reason in _RESTARTS:
        run.place(rung, at)


def format_report(report: SimulationReport) -> str:
    """The report as a table: escalations by deadline per unit and rung, would / did."""
    lines = [
        f"Mô phỏng thang chuyển cấp / ladder simulation: {report.cases} hồ sơ / cases opened "
        f"{report.since:%Y-%m-%d} – {report.until:%Y-%m-%d}",
        f"Thang / ladder: {report.ladder}",
        "",
        f"{'đơn vị / unit':<34} {'cấp / rung':>10} {'sẽ / would':>11} {'đã / did':>9}",
    ]
    keys = sorted(set(report.would) | set(report.did))
    for unit, a, b in keys:
        lines.append(
            f"{unit:<34} {f'{a}→{b}':>10} {report.would[(unit, a, b)]:>11} {report.did[(unit, a, b)]:>9}"
        )
    if not keys:
        lines.append("(không có / none)")
    tops = sorted(set(report.would_top) | {u for u, n in report.did_top.items() if n})
    for unit in tops:
        lines.append(
            f"{unit:<34} {'quá hạn đỉnh / overdue at top':>10} {report.would_top[unit]:>5} {report.did_top[unit]:>9}"
        )
    lines += [
        "",
        f"Tổng chuyển cấp do quá hạn / escalations by deadline: sẽ / would {sum(report.would.values())}, "
        f"đã / did {sum(report.did.values())}",
    ]
    if report.other:
        others = ", ".join(f"{reason} {n}" for reason, n in sorted(report.other.items()))
        lines.append(f"Không do hạn (giữ nguyên) / not by deadline (unchanged): {others}")
    return "\n".join(lines)
