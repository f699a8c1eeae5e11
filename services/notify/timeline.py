"""What each event means in a petition's history, in Vietnamese and English."""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseNoteAdded,
    CaseReopened,
    CaseResolved,
    Event,
    FeedbackGiven,
    PetitionRedacted,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
    TrackingLinkRequested,
)
from shared.events.base import STREAM_SUBJECT_PREFIX

ESCALATION_REASONS: dict[str, tuple[str, str]] = {
    "deadline_passed": ("quá hạn xử lý", "deadline passed"),
    "not_resolved": ("người dân báo chưa được giải quyết", "resident said not resolved"),
    "resident_request": ("người dân đề nghị", "resident's request"),
    "nobody_available": ("không có người nhận", "nobody available"),
    "declined": ("cán bộ từ chối", "declined by the member"),
    "leader_decision": ("lãnh đạo quyết định", "leader's decision"),
}
CLOSE_REASONS: dict[str, tuple[str, str]] = {
    "resident_confirmed": ("người dân xác nhận", "resident confirmed"),
    "quiet_period": ("hết thời gian chờ phản hồi", "no reply within the quiet period"),
    "withdrawn": ("người dân rút phản ánh", "withdrawn by the resident"),
}
# The status a petition is in after an event of this kind; kinds absent here change nothing.
STATUS_LABELS: dict[str, tuple[str, str]] = {
    "submitted": ("Đã tiếp nhận", "Submitted"),
    "assigned": ("Đã giao xử lý", "Assigned"),
    "accepted": ("Đang xử lý", "In progress"),
    "resolved": ("Đã giải quyết", "Resolved"),
    "reopened": ("Mở lại", "Reopened"),
    "escalated": ("Đã chuyển cấp trên", "Escalated"),
    "closed": ("Đã đóng", "Closed"),
    "withdrawn": ("Đã rút", "Withdrawn"),
    "feedback_given": ("Người dân đã phản hồi", "Resident replied"),
}


def kind_of(event_type: type[Event]) -> str:
    """`petitions.assigned.v1` → `assigned`."""
    parts = event_type.subject.split(".")
    if len(parts) != 3 or parts[0] != STREAM_SUBJECT_PREFIX:
        raise ValueError(f"unexpected subject {event_type.subject!r}")
    return parts[1]


@dataclass(frozen=True)
class Summary:
    vi: str
    en: str


def summarise(event: Event) -> Summary:
    """One line per language for the timeline. Staff read it; residents' contacts never appear."""
    match event:
        case PetitionSubmitted():
            return Summary(
                f"Người dân gửi phản ánh {event.reference}: {event.title}",
                f"Resident submitted petition {event.reference}: {event.title}",
            )
        case CaseAssigned():
            return Summary(
                f"Giao cho {event.member_name} (cấp {event.rung})",
                f"Assigned to {event.member_name} (rung {event.rung}, {event.reason})",
            )
        case CaseAccepted():
            return Summary("Cán bộ đã nhận xử lý", "The member accepted the case")
        case CaseNoteAdded():
            return Summary("Cán bộ ghi chú nội bộ", "The member added an internal note")
        case CaseResolved():
            return Summary(f"Đã giải quyết: {event.explanation}", f"Resolved: {event.explanation}")
        case CaseReopened():
            return Summary(
                f"Mở lại vì chưa được giải quyết (từ cấp {event.from_rung})",
                f"Reopened as not resolved (from rung {event.from_rung})",
            )
        case CaseEscalated():
            vi, en = ESCALATION_REASONS.get(event.reason, (event.reason, event.reason))
            return Summary(
                f"Chuyển từ cấp {event.from_rung} lên cấp {event.to_rung}: {vi}",
                f"Escalated from rung {event.from_rung} to rung {event.to_rung}: {en}",
            )
        case CaseClosed():
            vi, en = CLOSE_REASONS.get(event.reason, (event.reason, event.reason))
            return Summary(f"Đã đóng: {vi}", f"Closed: {en}")
        case FeedbackGiven(resolved=True):
            return Summary(
                "Người dân xác nhận đã được giải quyết", "The resident confirmed it is resolved"
            )
        case FeedbackGiven():
            return Summary(
                "Người dân cho biết chưa được giải quyết", "The resident said it is not resolved"
            )
        case PetitionWithdrawn():
            return Summary("Người dân rút phản ánh", "The resident withdrew the petition")
        case ResidentAnswered():
            return Summary("Người dân trả lời câu hỏi", "The resident answered a question")
        case TrackingLinkRequested():
            return Summary(
                "Người dân yêu cầu gửi lại liên kết theo dõi",
                "The resident asked for the tracking link again",
            )
        case PetitionRedacted():
            return Summary(
                "Người dân đã xoá thông tin; nội dung người dân viết đã được xoá",
                "The resident was erased; what they wrote was removed",
            )
    return Summary(kind_of(type(event)), kind_of(type(event)))


def status_label(kind: str, payload: dict[str, object]) -> tuple[str, str] | None:
    """The petition's status after an event of `kind`, or None when the event changes none."""
    if kind == "feedback_given":
        if payload.get("resolved"):
            return ("Người dân xác nhận đã giải quyết", "Resident confirmed resolved")
        return ("Người dân báo chưa giải quyết", "Resident says not resolved")
    return STATUS_LABELS.get(kind)
