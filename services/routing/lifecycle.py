"""The case state machine: which action may happen in which status, and where it leads.

assigned → accepted → resolved → closed; resolved → reopened → assigned (a rung higher);
accepted ⇄ waiting_for_resident (the deadline clock stops); assigned/accepted → declined → assigned;
any open status → assigned again (reassignment, escalation), withdrawn or rejected.
A note may be added while the case is open or resolved; it does not change the status.
"""

from __future__ import annotations

from typing import Literal

Status = Literal[
    "unassigned",
    "assigned",
    "accepted",
    "waiting_for_resident",
    "resolved",
    "reopened",
    "closed",
    "withdrawn",
    "rejected",
]
Action = Literal[
    "assign",
    "accept",
    "note",
    "resolve",
    "reopen",
    "close",
    "withdraw",
    "reject",
    "ask",
    "resume",
    "decline",
]

_OPEN: tuple[Status, ...] = (
    "unassigned",
    "assigned",
    "accepted",
    "waiting_for_resident",
    "reopened",
)
OPEN: frozenset[str] = frozenset(_OPEN)
FINAL: frozenset[str] = frozenset({"closed", "withdrawn", "rejected"})

_TABLE: dict[tuple[str, str], Status] = {
    **{(s, "assign"): "assigned" for s in _OPEN},
    ("assigned", "accept"): "accepted",
    ("accepted", "resolve"): "resolved",
    ("waiting_for_resident", "resolve"): "resolved",
    # Asking the resident stops the clock; their answer (or the longest wait) restarts it.
    ("assigned", "ask"): "waiting_for_resident",
    ("accepted", "ask"): "waiting_for_resident",
    ("waiting_for_resident", "resume"): "accepted",
    # A declined case goes straight to someone else.
    ("assigned", "decline"): "assigned",
    ("accepted", "decline"): "assigned",
    ("resolved", "reopen"): "reopened",
    ("resolved", "close"): "closed",
    **{(s, "withdraw"): "withdrawn" for s in (*_OPEN, "resolved")},
    **{(s, "reject"): "rejected" for s in _OPEN},
    **{(s, "note"): s for s in (*_OPEN, "resolved")},
}


class IllegalTransition(Exception):
    """An action that the case's current status does not allow."""

    def __init__(self, current_status: str, action: str) -> None:
        super().__init__(f"cannot {action} a case that is {current_status}")
        self.current_status = current_status
        self.action = action


def transition(current: str, action: Action) -> Status:
    """The status after `action`, or IllegalTransition(current) if it is not allowed now."""
    try:
        return _TABLE[(current, action)]
    except KeyError:
        raise IllegalTransition(current, action) from None


def allowed(current: str, action: Action) -> bool:
    return (current, action) in _TABLE


def is_open(status: str) -> bool:
    return status in OPEN
