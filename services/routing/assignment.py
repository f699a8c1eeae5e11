"""Who holds a case: the escalation ladder and the choice of a member at each rung.

Rung 0 is a serving member of the resident's unit who handles the category; rung 1 a leader of
that unit; rung 2 the leadership of its parent unit (the ward or commune); rung 3 and up the
further parents. A rung nobody can take is skipped upward (reason "no_member"); past the top
the case stays with the highest leaders there are, flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ALL_CATEGORIES = "*"
_EPOCH_KEY = ""  # sorts before every ISO timestamp: never assigned = idle the longest


@dataclass(frozen=True)
class Candidate:
    """A member as assignment sees them, with the number of open cases they hold now."""

    member_id: str
    username: str
    name: str
    unit_id: str
    role: str
    categories: frozenset[str]
    capacity: int
    open_cases: int = 0
    active: bool = True
    away_from: datetime | None = None
    away_until: datetime | None = None
    last_assigned_at: datetime | None = None
    email: str | None = None

    def handles(self, category_id: str) -> bool:
        return ALL_CATEGORIES in self.categories or category_id in self.categories

    def is_away(self, now: datetime) -> bool:
        if self.away_from is None and self.away_until is None:
            return False
        started = self.away_from is None or self.away_from <= now
        not_back = self.away_until is None or now < self.away_until
        return started and not_back

    def available(self, now: datetime) -> bool:
        return self.active and not self.is_away(now)


@dataclass(frozen=True)
class Choice:
    member: Candidate
    rung: int
    unit_id: str
    # "initial" when the rung asked for had someone; "no_member" when it was skipped upward;
    # "top" when nothing higher exists and the case stays with the top leaders.
    outcome: Literal["initial", "no_member", "top"]


def _load_order(c: Candidate) -> tuple[int, str, str]:
    idle = c.last_assigned_at.isoformat() if c.last_assigned_at else _EPOCH_KEY
    return (c.open_cases, idle, c.username)


def choose_member(
    candidates: Iterable[Candidate], *, unit_id: str, category_id: str, now: datetime
) -> Candidate | None:
    """A serving member of `unit_id` who handles the category, is active, not away and below
    capacity: fewest open cases first, then the longest idle, then by username."""
    eligible = [
        c
        for c in candidates
        if c.unit_id == unit_id
        and c.role == "member"
        and c.handles(category_id)
        and c.available(now)
        and c.open_cases < c.capacity
    ]
    return min(eligible, key=_load_order, default=None)


def choose_leader(
    candidates: Iterable[Candidate], *, unit_id: str, now: datetime
) -> Candidate | None:
    """A leader of `unit_id` who is active and not away. Capacity does not bind leaders: what
    reaches them has nowhere else to go."""
    eligible = [
        c for c in candidates if c.unit_id == unit_id and c.role == "leader" and c.available(now)
    ]
    return min(eligible, key=_load_order, default=None)


def chain(unit_id: str, parents: Mapping[str, str | None]) -> list[str]:
    """The unit and its ancestors, nearest first. An unknown unit gives an empty chain."""
    out: list[str] = []
    current: str | None = unit_id
    while current is not None and current in parents and current not in out:
        out.append(current)
        current = parents[current]
    return out


@dataclass(frozen=True)
class RungHolder:
    """Who holds a rung: people with `role` in the unit `level` steps above the case's unit."""

    level: int
    role: Literal["member", "leader"]

    def __str__(self) -> str:
        if self.level == 0:
            return self.role
        return "parent" if self.level == 1 else f"parent-{self.level}"


def default_holders(units: Sequence[str]) -> list[RungHolder]:
    """Without a ladder: a member, then the unit's leader, then each parent's leadership."""
    return [RungHolder(0, "member"), *(RungHolder(i, "leader") for i in range(len(units)))]


def _holders(units: Sequence[str], holders: Sequence[RungHolder] | None) -> Sequence[RungHolder]:
    return default_holders(units) if holders is None else holders


def top_rung(units: Sequence[str], holders: Sequence[RungHolder] | None = None) -> int:
    """The highest rung of a ladder whose units are `units` (nearest first)."""
    usable = [r for r, h in enumerate(_holders(units, holders)) if h.level < len(units)]
    return max(usable, default=-1)


def rung_unit(
    rung: int, units: Sequence[str], holders: Sequence[RungHolder] | None = None
) -> str | None:
    """The unit whose people hold rung `rung`: the resident's unit at rungs 0 and 1, then the
    parents (by default; a ladder says otherwise). None above the top."""
    if rung < 0:
        raise ValueError("rung must be >= 0")
    spec = _holders(units, holders)
    if rung >= len(spec) or spec[rung].level >= len(units):
        return None
    return units[spec[rung].level]


def holder_for_rung(
    rung: int,
    *,
    units: Sequence[str],
    candidates: Sequence[Candidate],
    category_id: str,
    now: datetime,
    holders: Sequence[RungHolder] | None = None,
) -> Candidate | None:
    """Who takes rung `rung` exactly, or None if nobody can."""
    unit = rung_unit(rung, units, holders)
    if unit is None:
        return None
    if _holders(units, holders)[rung].role == "member":
        return choose_member(candidates, unit_id=unit, category_id=category_id, now=now)
    return choose_leader(candidates, unit_id=unit, now=now)


def place(
    rung: int,
    *,
    units: Sequence[str],
    candidates: Sequence[Candidate],
    category_id: str,
    now: datetime,
    holders: Sequence[RungHolder] | None = None,
) -> Choice | None:
    """Place a case at `rung`, or the first rung above it someone can take; past the top, with
    the highest leaders below it. None only when the whole ladder is empty."""
    top = top_rung(units, holders)
    for r in range(rung, top + 1):
        member = holder_for_rung(
            r, units=units, candidates=candidates, category_id=category_id, now=now, holders=holders
        )
        if member is not None:
            unit = rung_unit(r, units, holders)
            assert unit is not None
            return Choice(member, r, unit, "initial" if r == rung else "no_member")
    for r in range(min(rung, top + 1) - 1, 0, -1):
        member = holder_for_rung(
            r, units=units, candidates=candidates, category_id=category_id, now=now, holders=holders
        )
        if member is not None:
            unit = rung_unit(r, units, holders)
            assert unit is not None
            return Choice(member, r, unit, "top")
    return None


def rung_of(
    member: Candidate, units: Sequence[str], holders: Sequence[RungHolder] | None = None
) -> int | None:
    """The rung a member would hold on this ladder (for a leader's reassignment or take-over),
    or None if they do not serve any unit on it."""
    if member.unit_id not in units:
        return None
    level = units.index(member.unit_id)
    role = "member" if member.role == "member" else "leader"
    for r, h in enumerate(_holders(units, holders)):
        if h.level == level and h.role == role:
            return r
    return None


# Why a case needs a holder: a new petition; its holder declined it; the resident said "not
# resolved"; it escalates (a deadline, the resident, a leader); its holder's absence began;
# or who would hold it if it escalated now (the heads-up before a deadline).
Trigger = Literal["submitted", "declined", "reopened", "escalated", "absent", "next_rung"]


@dataclass(frozen=True)
class Search:
    """Where the next holder of a case is looked for: from `rung` upward (past the top, the
    highest leaders there are), leaving out `exclude`. With `climb`, only someone above the
    case's current rung will do: an escalation that cannot climb does not happen."""

    rung: int
    exclude: frozenset[str] = frozenset()
    climb: bool = False


def next_search(
    trigger: Trigger,
    *,
    rung: int,
    leaving: str | None = None,
    decliners: Sequence[str] = (),
    declines_before_leader: int = 2,
) -> Search:
    """THE rule of who holds a case next, by why it moves from rung `rung`.

    - A new petition starts at rung 0.
    - A declined case goes to someone else at the same rung who has not declined it (else up);
      declined too often at rung 0, it goes to the unit's leader instead of bouncing between
      members.
    - Reopened by the resident, it goes one rung up; at the top it stays with the top leaders.
    - An escalation (and the heads-up before one) goes one rung up, or further while nobody can
      take a rung; with nowhere higher, nobody.
    - A member whose absence began hands their cases to the leader (at least rung 1), never back
      to themselves.
    """
    if trigger == "submitted":
        return Search(0)
    if trigger == "declined":
        out = {*decliners, *((leaving,) if leaving else ())}
        start = 1 if rung == 0 and len(decliners) >= declines_before_leader else rung
        return Search(start, frozenset(out))
    if trigger == "reopened":
        return Search(rung + 1)
    if trigger == "absent":
        return Search(max(rung, 1), frozenset((leaving,) if leaving else ()))
    return Search(rung + 1, climb=True)
