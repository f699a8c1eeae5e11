"""What notify refuses, as exceptions near the domain. The HTTP edge turns each into a problem
with its status, in one place (the `errors=` mapping `create_app` gives `install_service_edge`).

A petition someone may not see is answered exactly as one that does not exist: that a petition
exists is itself not for everyone (`access.py`).
"""

from __future__ import annotations

from typing import Any


class NotifyError(Exception):
    """A request notify refuses; `detail` is what the person reads (Vietnamese, then English)."""

    detail = "Yêu cầu bị từ chối / Request refused"
    problem_type = "about:blank"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.detail)
        self.extra = extra


class PetitionNotFound(NotifyError):
    detail = "Không có phản ánh này / No such petition"
    problem_type = "urn:petitions:problem:petition-not-found"


class NotificationNotFound(NotifyError):
    detail = "Không có thông báo này / No such notification"
    problem_type = "urn:petitions:problem:notification-not-found"


class NotificationNotRetryable(NotifyError):
    """Only a dead, failing or in-doubt notification goes back to the queue: a queued one is waiting
    already, a sent one was delivered, a skipped one is for nobody."""

    problem_type = "urn:petitions:problem:notification-not-retryable"

    def __init__(self, status: str) -> None:
        super().__init__(
            f"Thông báo đang ở trạng thái {status} / Notification is {status}, "
            "only dead, failed or in-doubt ones can be retried",
            notification_status=status,
        )


class NotAMember(NotifyError):
    """The in-app inbox belongs to a member; an account not tied to one has none."""

    detail = "Tài khoản không gắn với thành viên / Not a member account"
    problem_type = "urn:petitions:problem:not-a-member"


class MessageNotFound(NotifyError):
    detail = "Không có thông báo này / No such message"
    problem_type = "urn:petitions:problem:message-not-found"


class UnitNotVisible(NotifyError):
    detail = "Không xem được đơn vị này / Not a unit you may see"
    problem_type = "urn:petitions:problem:unit-not-visible"


class MemberNotVisible(NotifyError):
    detail = "Không xem được số liệu này / Not figures you may see"
    problem_type = "urn:petitions:problem:member-not-visible"


class DigestNotFound(NotifyError):
    detail = "Không có bản tổng hợp này / No such digest"
    problem_type = "urn:petitions:problem:digest-not-found"


class InvalidDateRange(NotifyError):
    problem_type = "urn:petitions:problem:invalid-date-range"


class UnitTreeUnavailable(NotifyError):
    """Routing owns the area tree; while it does not answer, sub-units cannot be added up."""

    detail = "Chưa lấy được cây đơn vị / The unit tree is not available"
    problem_type = "urn:petitions:problem:unit-tree-unavailable"


class RoutingUnavailable(NotifyError):
    detail = "Chưa hỏi được routing / Routing did not answer, try again"
    problem_type = "urn:petitions:problem:routing-unavailable"
