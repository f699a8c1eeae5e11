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
# The one list of statuses in which a case still waits for someone to act (they count against
# a member's capacity, and deadlines run in them).
OPEN: frozenset[str] = frozenset(_OPEN)
# Derived: open cases somebody holds (an unassigned case has no holder; reopened is the moment
# before it is assigned anew).
HELD: frozenset[str] = OPEN - {"unassigned"}
# Derived: open cases whose deadline clock runs (it stops while the resident is asked).
CLOCK_RUNS: frozenset[str] = OPEN - {"waiting_for_resident"}
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


# Status names as a member reads them (Vietnamese, English).
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "unassigned": ("chưa có người nhận", "not yet held by anyone"),
    "assigned": ("đã giao, chờ nhận", "assigned, waiting to be accepted"),
    "accepted": ("đang xử lý", "being handled"),
    "waiting_for_resident": ("đang chờ người dân trả lời", "waiting for the resident's answer"),
    "resolved": ("đã giải quyết, chờ người dân xác nhận", "resolved, waiting for the resident"),
    "reopened": ("được mở lại", "reopened"),
    "closed": ("đã đóng", "closed"),
    "withdrawn": ("người dân đã rút lại", "withdrawn by the resident"),
    "rejected": ("đã bị từ chối xử lý", "rejected"),
}

# What each action is called in a refusal: "Không thể {vi} …" / "This case cannot be {en} …".
_ACTION_WORDS: dict[str, tuple[str, str]] = {
    "accept": ("nhận hồ sơ", "accepted"),
    "note": ("thêm ghi chú cho hồ sơ", "given a note"),
    "resolve": ("báo đã giải quyết hồ sơ", "resolved"),
    "decline": ("trả lại hồ sơ", "declined"),
    "ask": ("hỏi thêm người dân về hồ sơ", "used to ask the resident a question"),
    "reassign": ("giao lại hồ sơ", "reassigned"),
    "escalate": ("chuyển hồ sơ lên cấp trên", "escalated"),
    "take-over": ("tiếp nhận hồ sơ", "taken over"),
    "reject": ("từ chối xử lý hồ sơ", "rejected"),
}


def status_words(status: str) -> tuple[str, str]:
    return STATUS_WORDS.get(status, (status, status))


def _hint(action: str, status: str) -> tuple[str, str]:
    """What to do instead, given why `action` is refused in `status`."""
    if status in FINAL:
        return (
            "Hồ sơ đã kết thúc, không cần thao tác thêm.",
            "The case is finished; nothing more can be done on it.",
        )
    if status == "resolved":
        return (
            "Hồ sơ đã được giải quyết; nếu người dân báo chưa giải quyết, hồ sơ sẽ được mở lại "
            "và chuyển lên cấp trên.",
            "It is already resolved; if the resident says it is not, it reopens one rung up.",
        )
    if status in ("unassigned", "reopened"):
        return (
            "Hồ sơ chưa có người giữ; lãnh đạo đơn vị cần giao hồ sơ cho một người trước.",
            "Nobody holds it yet; a unit leader must assign it to someone first.",
        )
    if status == "waiting_for_resident":
        if action == "ask":
            return (
                "Hãy chờ người dân trả lời câu hỏi trước rồi mới hỏi thêm.",
                "Wait for the resident to answer the first question before asking another.",
            )
        return (
            "Hãy chờ người dân trả lời (hoặc hết thời gian chờ) rồi thử lại.",
            "Wait for the resident's answer (or the end of the longest wait), then try again.",
        )
    if action == "accept" and status == "accepted":
        return (
            "Hồ sơ đã được nhận; bạn có thể ghi chú, hỏi người dân hoặc báo đã giải quyết.",
            "It was already accepted; you can add a note, ask the resident or resolve it.",
        )
    return ("Hãy tải lại trang để xem trạng thái mới nhất.", "Reload to see its current state.")


def explain_refusal(action: str, status: str, *, concurrent: bool = False) -> tuple[str, str]:
    """Why `action` cannot happen to a case in `status`, and what to do first, as one
    Vietnamese sentence pair (Vietnamese, English)."""
    verb_vi, verb_en = _ACTION_WORDS.get(action, (action, action))
    state_vi, state_en = status_words(status)
    hint_vi, hint_en = _hint(action, status)
    if concurrent:
        return (
            f"Hồ sơ vừa được người khác thay đổi và hiện {state_vi}. "
            "Hãy tải lại trang để xem trạng thái mới nhất rồi thử lại.",
            f"Someone else changed the case a moment ago; it is now {state_en}. "
            "Reload to see its current state, then try again.",
        )
    return (
        f"Không thể {verb_vi} vì hồ sơ {state_vi}. {hint_vi}",
        f"This case cannot be {verb_en} because it is {state_en}. {hint_en}",
    )
