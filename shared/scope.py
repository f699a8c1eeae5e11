"""Who may see a petition: the one rule every service answers with.

Routing owns the rule (it keeps the organisation and the cases, and its permissions ask it);
it lives in the shared library so that notify asks the very same function rather than a copy
that drifts. A person may see a petition when they

- are an administrator;
- hold it now, or held it before (a member keeps the cases taken from them in sight);
- lead the petition's unit or a unit above it.

Nobody else: not a member of the same unit, not a leader of a unit beside or below it, not a
member whose leader the case was escalated to. For them the petition does not exist ("not
found"), and it counts in none of their figures.

A unit's figures count every petition of the unit and the units below it, so they are for those
who may see all of those: administrators, and leaders of the unit or a unit above it.

Plain functions of the person and the facts: no database, no HTTP.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from shared.auth import Staff


@dataclass(frozen=True)
class Reach:
    """What the rule needs to know about a petition.

    `units`: the petition's own unit (the resident's), and, when the caller knows them, the
    units above it. Routing gives the whole chain; notify, which keeps no tree, the petition's
    unit alone, and `leads` answers the same for both.
    `holders`: every member who held it, the current holder included."""

    units: Collection[str]
    holders: Collection[str]


def leads(staff: Staff, units: Collection[str]) -> bool:
    """An administrator, or a leader of one of `units` or of a unit above one of them.

    `Staff.units` is a leader's unit and every unit below it, computed by routing from the
    organisation at sign-in; so "the petition's unit is within the leader's reach" answers
    "the leader's unit is on the petition's chain" for a service that keeps no copy of the
    tree, and routing, which passes the whole chain, gets the same answer from its first
    half."""
    if staff.is_admin:
        return True
    if staff.role != "leader" or staff.unit_id is None:
        return False
    return staff.unit_id in units or any(unit in staff.units for unit in units)


def held(staff: Staff, holders: Collection[str]) -> bool:
    return staff.member_id is not None and staff.member_id in holders


def may_see(staff: Staff, petition: Reach) -> bool:
    """THE answer to "may this person see this petition"."""
    return leads(staff, petition.units) or held(staff, petition.holders)


def may_see_unit(staff: Staff, unit_id: str | None) -> bool:
    """A unit's figures (statistics, dashboard rows, digests in full): administrators, and
    leaders of the unit or a unit above it, who may see every petition they count."""
    if staff.is_admin:
        return True
    return staff.role == "leader" and unit_id is not None and unit_id in staff.units


def may_see_member(staff: Staff, member_id: str, member_unit_id: str | None) -> bool:
    """A member's figures count the petitions they held, all of which the member sees, and
    so do the leaders of the member's unit or a unit above it, and administrators."""
    return staff.member_id == member_id or may_see_unit(staff, member_unit_id)
