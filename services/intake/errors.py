"""What intake's rules refuse, as exceptions. The HTTP edge maps each to its status in one place
(`ERRORS` in `app.py`) and renders it as problem details with `problem_type` and `extra`; the
pages turn the same exceptions into a message that keeps the resident's input.

The message of each exception is what a person reads: Vietnamese first, then English.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

VALIDATION = "urn:petitions:problem:validation"


class IntakeError(Exception):
    """A refusal of intake's rules; `problem_type` names it in problem details, `extra` adds
    members to them and `headers` to the response."""

    problem_type = "about:blank"

    @property
    def extra(self) -> dict[str, Any]:
        return {}

    @property
    def headers(self) -> dict[str, str]:
        return {}


class UnknownTrackingLink(IntakeError):
    """No petition has this tracking token (never issued, or mistyped)."""

    def __init__(self) -> None:
        super().__init__(
            "Không tìm thấy phản ánh cho liên kết này / No petition for this tracking link"
        )


class UnknownReference(IntakeError):
    """No petition has this reference (or it is not a reference at all)."""

    def __init__(self) -> None:
        super().__init__("Không có phản ánh với mã số này / No petition with this reference")


@dataclass(frozen=True)
class FieldError:
    field: str
    message_vi: str
    message_en: str

    @property
    def message(self) -> str:
        return f"{self.message_vi} / {self.message_en}"


class InvalidSubmission(IntakeError):
    """What a resident sent breaks one or more rules; each error names its field, in Vietnamese
    and English. Nothing is stored."""

    problem_type = VALIDATION

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        super().__init__(detail or f"Trường không hợp lệ / Invalid fields: {fields}")
        self.errors = errors

    @property
    def extra(self) -> dict[str, Any]:
        return {
            "errors": [
                {"field": e.field, "message": e.message_en, "message_vi": e.message_vi}
                for e in self.errors
            ]
        }


class MalformedBody(InvalidSubmission):
    """The body is not JSON at all (a syntax error, bad UTF-8, nesting too deep to parse)."""

    def __init__(self) -> None:
        super().__init__(
            [FieldError("body", "không phải JSON hợp lệ", "not valid JSON")],
            "Nội dung không phải JSON hợp lệ / Body is not valid JSON",
        )


class InvalidIdempotencyKey(InvalidSubmission):
    """An `Idempotency-Key` header that is not 1–128 printable ASCII characters."""

    def __init__(self) -> None:
        super().__init__(
            [
                FieldError(
                    "Idempotency-Key",
                    "1–128 ký tự ASCII in được, không có khoảng trắng",
                    "1-128 printable ASCII characters, no spaces",
                )
            ]
        )


class UnsupportedMediaType(IntakeError):
    """A body that is not JSON by its declared media type."""

    problem_type = "urn:petitions:problem:media-type"

    def __init__(self) -> None:
        super().__init__("Cần gửi application/json / Send application/json")


class IdempotencyConflict(IntakeError):
    """An idempotency key whose first petition cannot be handed back for this request."""


class IdempotencyKeyReused(IdempotencyConflict):
    """The key was used, within its window, for a different submission."""

    problem_type = "urn:petitions:problem:idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key đã dùng cho một phản ánh khác / "
            "Idempotency-Key was used for a different petition"
        )


class IdempotencyKeyErased(IdempotencyConflict):
    """The key's petition had its contact data, tracking token copy included, erased: there is
    no receipt left to hand back."""

    problem_type = "urn:petitions:problem:idempotency-key-erased"

    def __init__(self) -> None:
        super().__init__(
            "Phản ánh của khoá này đã xoá thông tin liên hệ / "
            "The petition for this key had its contact data erased"
        )


class ActionNotAllowed(IntakeError):
    """A resident action the petition's current state does not allow. `why`: "status" (not in
    this status), "changed" (it changed while we acted), "other_question" (the question
    answered is not the one awaiting an answer)."""

    def __init__(self, status: str, why: str = "status") -> None:
        super().__init__(
            "Câu hỏi này không còn chờ trả lời / This question is no longer awaiting an answer"
            if why == "other_question"
            else "Trạng thái hiện tại của phản ánh không cho phép việc này / "
            "The petition's current status does not allow this"
        )
        self.status = status
        self.why = why

    @property
    def extra(self) -> dict[str, Any]:
        return {"current_status": self.status}


class FeedbackNotExpected(IntakeError):
    """The resident answered when there is no resolution waiting for their answer."""

    def __init__(self, status: str) -> None:
        super().__init__(
            "Chỉ phản hồi được khi phản ánh đã được giải quyết và chưa có ý kiến / "
            "Feedback is only possible once, after a resolution"
        )
        self.status = status

    @property
    def extra(self) -> dict[str, Any]:
        return {"current_status": self.status}


class EscalationRefused(IntakeError):
    """A resident's escalation request refused: not open, not overdue yet, or asked too soon."""


class EscalationNotOpen(EscalationRefused):
    """Nobody holds the case with a running deadline (closed, resolved, waiting for the
    resident, or not yet assigned)."""

    problem_type = "urn:petitions:problem:not-open"

    def __init__(self) -> None:
        super().__init__(
            "Chỉ đề nghị được khi phản ánh đang được xử lý / "
            "Escalation can only be asked while the petition is being handled"
        )


class NotOverdue(EscalationRefused):
    """The deadline has not passed yet."""

    problem_type = "urn:petitions:problem:not-overdue"

    def __init__(self, due_at: datetime | None) -> None:
        super().__init__("Phản ánh chưa quá hạn xử lý / The petition is not overdue yet")
        self.due_at = due_at

    @property
    def extra(self) -> dict[str, Any]:
        return {"due_at": self.due_at.isoformat() if self.due_at else None}


class EscalationTooSoon(EscalationRefused):
    """Asked again within a day of the last request; `allowed_at` says from when."""

    problem_type = "urn:petitions:problem:escalation-too-soon"

    def __init__(self, allowed_at: datetime, *, now: datetime) -> None:
        super().__init__(
            "Mỗi phản ánh chỉ được đề nghị chuyển lên cấp trên một lần trong 24 giờ / "
            "Escalation can be asked once per 24 hours"
        )
        self.allowed_at = allowed_at
        self.now = now

    @property
    def extra(self) -> dict[str, Any]:
        return {"allowed_at": self.allowed_at.isoformat()}

    @property
    def headers(self) -> dict[str, str]:
        wait = math.ceil((self.allowed_at - self.now).total_seconds())
        return {"Retry-After": str(max(wait, 1))}


class TooManyRequests(IntakeError):
    """Too many public writes from one address or for one contact within the window: nothing
    was done; the same request may be sent again after `retry_after` seconds."""

    problem_type = "urn:petitions:problem:rate-limited"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            f"Bạn đã gửi quá nhiều yêu cầu. Vui lòng thử lại sau {minutes} phút / "
            f"Too many requests. Please try again in {minutes} minutes"
        )
        self.retry_after = retry_after
        self.minutes = minutes

    @property
    def extra(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class NotAPetition(IntakeError):
    """A complaint about an administrative decision (khiếu nại) or a denunciation (tố cáo):
    each has its own law and office, so nothing is stored and the resident is told where to
    file it instead."""

    problem_type = "urn:petitions:problem:not-a-petition"

    def __init__(self, kind: str, guidance_vi: str, guidance_en: str) -> None:
        super().__init__(f"{guidance_vi} / {guidance_en}")
        self.kind = kind
        self.guidance_vi = guidance_vi
        self.guidance_en = guidance_en

    @property
    def extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "guidance": {"vi": self.guidance_vi, "en": self.guidance_en}}


class DatabaseUnavailable(IntakeError):
    """The database cannot be reached: nothing was stored, the same request may be sent again."""

    problem_type = "urn:petitions:problem:unavailable"
    retry_after_s = 5
    # The HTTP edge's breaker answers the next API requests at once (`shared.web.Breaker`).
    database_outage = True

    def __init__(self) -> None:
        super().__init__(
            "Hệ thống tạm thời không lưu được, vui lòng thử lại sau ít phút / "
            "The database is unavailable for a moment, please retry"
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}
