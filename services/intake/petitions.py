"""Rules for petitions: what a valid submission is, how references and tracking tokens are made,
and what residents see of routing's work on their case."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.intake.catalog import Catalog
from services.intake.errors import FieldError, InvalidSubmission
from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseDeclined,
    CaseEscalated,
    CaseEvent,
    CaseOverdueAtTop,
    CaseQuestionAsked,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseResumed,
)

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
LOCATION_MAX = 300
NAME_MAX = 100
PHONE_MAX = 20
EMAIL_MAX = 254
COMMENT_MAX = 2000
LANGUAGES = ("vi", "en")

# Crockford's base32: no I, L, O or U, so a reference read aloud or copied by hand stays unambiguous.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PREFIX = "PA"  # phản ánh
_REFERENCE_RE = re.compile(
    rf"^{REFERENCE_PREFIX}-[{REFERENCE_ALPHABET}]{{4}}-[{REFERENCE_ALPHABET}]{{4}}$"
)
_PHONE_RE = re.compile(r"^\+?[0-9 ]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
# C0 controls other than tab and newlines, and DEL: invisible, and PostgreSQL refuses NUL.
# Lone surrogates (JSON's "\ud800") are no characters at all: no database can store them.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class Submission:
    unit_id: str
    category_id: str
    title: str
    description: str
    location: str | None
    name: str | None
    phone: str | None
    email: str | None
    notify: bool
    language: str
    # An optional point the resident gave (their browser's position, or typed): WGS 84 degrees,
    # both or neither.
    latitude: float | None = None
    longitude: float | None = None

    @property
    def wants_updates(self) -> bool:
        """Updates need both the resident's wish and a way to reach them."""
        return self.notify and bool(self.email or self.phone)


def clean_text(value: str) -> str:
    """NFC (Vietnamese typed with different keyboards compares equal), no control characters,
    no surrounding blanks; nothing at all when only invisible characters are left (zero-width
    spaces and other format characters read as empty)."""
    text = _CONTROL_RE.sub("", unicodedata.normalize("NFC", value)).strip()
    if all(c.isspace() or unicodedata.category(c) == "Cf" for c in text):
        return ""
    return text


def _text(
    data: Mapping[str, Any],
    field: str,
    errors: list[FieldError],
    *,
    required: bool,
    max_len: int,
) -> str | None:
    raw = data.get(field)
    if raw is None:
        value = ""
    elif isinstance(raw, str):
        value = clean_text(raw)
    else:
        errors.append(FieldError(field, "phải là chuỗi ký tự", "must be text"))
        return None
    if not value:
        if required:
            errors.append(FieldError(field, "không được để trống", "is required"))
        return None
    if len(value) > max_len:
        errors.append(
            FieldError(
                field,
                f"tối đa {max_len} ký tự (hiện có {len(value)})",
                f"at most {max_len} characters (got {len(value)})",
            )
        )
        return None
    return value


def _flag(data: Mapping[str, Any], field: str, errors: list[FieldError]) -> bool:
    raw = data.get(field, False)
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    errors.append(FieldError(field, "phải là true hoặc false", "must be true or false"))
    return False


def _contact(data: Mapping[str, Any], errors: list[FieldError]) -> tuple[str | None, str | None]:
    """The phone and email given, each checked for its shape when present."""
    phone = _text(data, "phone", errors, required=False, max_len=PHONE_MAX)
    if phone is not None and (not _PHONE_RE.match(phone) or sum(c.isdigit() for c in phone) < 6):
        errors.append(FieldError("phone", "số điện thoại không hợp lệ", "not a valid phone number"))
    email = _text(data, "email", errors, required=False, max_len=EMAIL_MAX)
    if email is not None and not _EMAIL_RE.match(email):
        errors.append(
            FieldError("email", "địa chỉ email không hợp lệ", "not a valid email address")
        )
    return phone, email


def validate_submission(data: Mapping[str, Any], catalog: Catalog) -> Submission:
    """Check everything a resident sent; raise `InvalidSubmission` listing every broken rule.

    The unit must be one a resident lives in (below ward level), the category must exist, the
    resident must consent to their petition being processed, and a phone or email, when given,
    must look like one.
    """
    errors: list[FieldError] = []
    unit_id = _text(data, "unit_id", errors, required=True, max_len=100)
    if unit_id is not None and not catalog.is_selectable(unit_id):
        errors.append(FieldError("unit_id", "khu vực không tồn tại", "unknown area"))
    category_id = _text(data, "category_id", errors, required=True, max_len=100)
    if category_id is not None and category_id not in catalog.categories:
        errors.append(FieldError("category_id", "lĩnh vực không tồn tại", "unknown category"))
    title = _text(data, "title", errors, required=True, max_len=TITLE_MAX)
    description = _text(data, "description", errors, required=True, max_len=DESCRIPTION_MAX)
    location = _text(data, "location", errors, required=False, max_len=LOCATION_MAX)
    name = _text(data, "name", errors, required=False, max_len=NAME_MAX)
    phone, email = _contact(data, errors)
    latitude, longitude = _point(data, errors)
    notify = _flag(data, "notify", errors)
    if data.get("consent") is not True:
        errors.append(
            FieldError(
                "consent",
                "cần đồng ý để phản ánh được xử lý",
                "consent is required to process the petition",
            )
        )
    language = data.get("language")
    if language is None:
        language = "vi"
    elif language not in LANGUAGES:
        errors.append(FieldError("language", "chỉ hỗ trợ vi hoặc en", "must be vi or en"))
    if errors:
        raise InvalidSubmission(errors)
    assert unit_id is not None
    assert category_id is not None
    assert title is not None
    assert description is not None
    return Submission(
        unit_id=unit_id,
        category_id=category_id,
        title=title,
        description=description,
        location=location,
        name=name,
        phone=phone,
        email=email.lower() if email else None,
        notify=notify,
        language=str(language),
        latitude=latitude,
        longitude=longitude,
    )


def _coordinate(
    data: Mapping[str, Any], field: str, limit: float, errors: list[FieldError]
) -> float | None:
    raw = data.get(field)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = float(raw.strip().replace(",", ".") if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(raw, bool) or not math.isfinite(value) or not -limit <= value <= limit:
        errors.append(
            FieldError(
                field,
                f"phải là số từ -{limit:g} đến {limit:g}",
                f"must be a number from -{limit:g} to {limit:g}",
            )
        )
        return None
    # About 10 cm: more digits say nothing more about the place.
    return round(value, 6)


def _point(data: Mapping[str, Any], errors: list[FieldError]) -> tuple[float | None, float | None]:
    """The optional point: latitude and longitude in degrees, both or neither."""
    latitude = _coordinate(data, "latitude", 90, errors)
    longitude = _coordinate(data, "longitude", 180, errors)
    if (latitude is None) != (longitude is None):
        missing = "longitude" if longitude is None else "latitude"
        if not any(e.field == missing for e in errors):
            errors.append(
                FieldError(missing, "cần cả vĩ độ và kinh độ", "both latitude and longitude")
            )
        return None, None
    return latitude, longitude


def validate_comment(raw: Any, *, field: str = "comment", required: bool = False) -> str | None:
    """A resident's free text (comment, reason, answer): cleaned, at most COMMENT_MAX long."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise InvalidSubmission([FieldError(field, "phải là chuỗi ký tự", "must be text")])
    value = clean_text(raw)
    if not value and required:
        raise InvalidSubmission([FieldError(field, "không được để trống", "is required")])
    if len(value) > COMMENT_MAX:
        raise InvalidSubmission(
            [FieldError(field, f"tối đa {COMMENT_MAX} ký tự", f"at most {COMMENT_MAX} characters")]
        )
    return value or None


def submission_fingerprint(s: Submission) -> str:
    """What makes two submissions the same request, for idempotency keys: the validated fields
    (so a retry that differs only in spacing or key order is still the same request)."""
    parts = [
        s.unit_id,
        s.category_id,
        s.title,
        s.description,
        s.location or "",
        s.name or "",
        s.phone or "",
        s.email or "",
        str(s.notify),
        s.language,
    ]
    if s.latitude is not None:
        # Only when given, so that a petition without a point keeps its earlier fingerprint.
        parts += [f"{s.latitude:.6f}", f"{s.longitude:.6f}"]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def new_reference() -> str:
    """A short code a resident can read over the phone: 40 random bits, e.g. PA-7K3M-9QX2."""
    code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(8))
    return f"{REFERENCE_PREFIX}-{code[:4]}-{code[4:]}"


def parse_reference(text: str) -> str | None:
    """Read a reference as people type it: any case, spaces or dashes, O for 0, I or L for 1."""
    compact = re.sub(r"[\s-]", "", text.upper())
    compact = compact.removeprefix(REFERENCE_PREFIX)
    compact = compact.translate(str.maketrans("OIL", "011"))
    if len(compact) != 8:
        return None
    reference = f"{REFERENCE_PREFIX}-{compact[:4]}-{compact[4:]}"
    return reference if _REFERENCE_RE.match(reference) else None


def new_tracking_token() -> str:
    """The resident's secret link: 256 random bits; whoever holds it sees the petition."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Only this is stored on the petition, so a leaked petitions table opens no tracking page."""
    return hashlib.sha256(token.encode()).hexdigest()


def tracking_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/track/{token}"


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = [c for c in phone if c.isdigit()]
    return "***" + "".join(digits[-3:])


PublicStatus = Literal[
    "submitted",
    "assigned",
    "in_progress",
    "waiting_for_resident",
    "resolved",
    "feedback_given",
    "reopened",
    "escalated",
    "closed",
    "rejected",
    "withdrawn",
]

# Nothing moves a petition out of these: not a late routing event, not a resident action.
FINAL_STATUSES: frozenset[str] = frozenset({"closed", "rejected", "withdrawn"})
# Someone holds the case and a deadline runs: the resident may ask for escalation once overdue.
# (Not while routing waits for the resident: the deadline clock is paused then.)
ESCALATABLE_STATUSES: frozenset[str] = frozenset(
    {"assigned", "in_progress", "reopened", "escalated"}
)
ESCALATION_REQUEST_EVERY = timedelta(hours=24)

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "submitted": ("Đã tiếp nhận", "Submitted"),
    "assigned": ("Đã giao cán bộ xử lý", "Assigned"),
    "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã có kết quả xử lý", "Resolved"),
    "feedback_given": ("Đã nhận ý kiến của bạn", "Feedback received"),
    "reopened": ("Được xử lý lại", "Reopened"),
    "escalated": ("Đã chuyển lên cấp trên", "Escalated"),
    "waiting_for_resident": ("Đang chờ bạn bổ sung thông tin", "Waiting for your answer"),
    "closed": ("Đã đóng", "Closed"),
    "rejected": ("Không được tiếp nhận xử lý", "Rejected"),
    "withdrawn": ("Bạn đã rút phản ánh", "Withdrawn by you"),
}

# Who holds the case at each rung, in words a resident understands (never "rung" or "level").
_HOLDERS: tuple[tuple[str, str], ...] = (
    ("cán bộ phụ trách địa bàn", "the member serving your area"),
    ("trưởng/bí thư đơn vị", "the unit's leader"),
    ("lãnh đạo phường, xã", "ward or commune leadership"),
)
_HOLDER_ABOVE = ("lãnh đạo cấp trên phường, xã", "leadership above the ward or commune")


def holder_label(rung: int) -> tuple[str, str]:
    """Who holds a case at `rung`, in Vietnamese and English."""
    if rung < 0:
        return _HOLDERS[0]
    return _HOLDERS[rung] if rung < len(_HOLDERS) else _HOLDER_ABOVE


# Two events stamped with the same instant are applied in lifecycle order, whatever order
# their consumers see them in (routing emits "escalated" and the next "assigned" together).
_TIE_RANK: dict[str, int] = {
    "submitted": 0,
    "escalated": 1,
    "reopened": 1,
    "assigned": 2,
    "in_progress": 3,
    "waiting_for_resident": 3,
    "resolved": 4,
    "feedback_given": 4,
    "closed": 5,
    "rejected": 5,
    "withdrawn": 5,
}

_ESCALATION_REASONS: dict[str, tuple[str, str]] = {
    "deadline_passed": ("quá hạn xử lý", "the deadline passed"),
    "not_resolved": ("bạn cho biết chưa được giải quyết", "you said it was not resolved"),
    "resident_request": ("theo đề nghị của bạn", "at your request"),
    "nobody_available": ("không có cán bộ nhận xử lý", "nobody was available"),
    "declined": ("cán bộ từ chối xử lý", "the member declined it"),
    "leader_decision": ("theo quyết định của lãnh đạo", "a leader decided so"),
}

_CLOSE_REASONS: dict[str, tuple[str, str]] = {
    "resident_confirmed": ("bạn xác nhận đã được giải quyết", "you confirmed it was resolved"),
    "quiet_period": ("không có ý kiến sau khi giải quyết", "no reply after the resolution"),
    "withdrawn": ("phản ánh đã được rút", "the petition was withdrawn"),
}

_DECLINE_REASONS: dict[str, tuple[str, str]] = {
    "not_my_area": ("không thuộc địa bàn phụ trách", "outside their area"),
    "not_my_category": ("không thuộc lĩnh vực phụ trách", "outside their field"),
    "conflict_of_interest": ("để bảo đảm khách quan", "to keep the handling impartial"),
    "needs_other_agency": ("cần cơ quan khác xử lý", "another agency is needed"),
    "away": ("cán bộ vắng mặt", "the member is away"),
}


def status_label(status: str) -> tuple[str, str]:
    return STATUS_LABELS.get(status, (status, status))


@dataclass(frozen=True)
class PublicUpdate:
    """What a routing event means to the resident: a timeline line, maybe a new status (None:
    the line only), maybe a deadline."""

    kind: str
    status: PublicStatus | None
    message_vi: str
    message_en: str
    detail: str | None = None
    # None: keep the deadline; ("set", x) replaces it (x None clears it).
    deadline: tuple[Literal["set"], datetime | None] | None = None
    rung: int | None = None
    # Shown once per petition, however often routing repeats it (the daily overdue notice).
    once: bool = False


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _assigned(event: CaseAssigned) -> PublicUpdate:
    vi, en = holder_label(event.rung)
    return PublicUpdate(
        kind="assigned",
        status="assigned",
        message_vi=f"Phản ánh đã được giao cho {vi}.",
        message_en=f"The petition was assigned to {en}.",
        deadline=("set", _aware(event.due_at)),
        rung=event.rung,
    )


def _accepted(_: CaseAccepted) -> PublicUpdate:
    return PublicUpdate(
        kind="in_progress",
        status="in_progress",
        message_vi="Cán bộ đã nhận xử lý phản ánh.",
        message_en="A member has taken the petition on.",
    )


def _resolved(event: CaseResolved) -> PublicUpdate:
    return PublicUpdate(
        kind="resolved",
        status="resolved",
        message_vi="Phản ánh đã được giải quyết. Vui lòng cho biết ý kiến của bạn.",
        message_en="The petition was resolved. Please tell us whether it is settled.",
        detail=event.explanation,
        deadline=("set", None),
    )


def _reopened(_: CaseReopened) -> PublicUpdate:
    return PublicUpdate(
        kind="reopened",
        status="reopened",
        message_vi="Phản ánh được mở lại để tiếp tục xử lý.",
        message_en="The petition was reopened for further work.",
        deadline=("set", None),
    )


def _escalated(event: CaseEscalated) -> PublicUpdate:
    why_vi, why_en = _ESCALATION_REASONS.get(event.reason, (event.reason, event.reason))
    to_vi, to_en = holder_label(event.to_rung)
    return PublicUpdate(
        kind="escalated",
        status="escalated",
        message_vi=f"Phản ánh đã được chuyển lên {to_vi} ({why_vi}).",
        message_en=f"The petition was passed up to {to_en} ({why_en}).",
        rung=event.to_rung,
    )


def _closed(event: CaseClosed) -> PublicUpdate:
    why_vi, why_en = _CLOSE_REASONS.get(event.reason, (event.reason, event.reason))
    return PublicUpdate(
        kind="closed",
        status="closed",
        message_vi=f"Phản ánh đã đóng ({why_vi}).",
        message_en=f"The petition was closed ({why_en}).",
        deadline=("set", None),
    )


def _question_asked(event: CaseQuestionAsked) -> PublicUpdate:
    return PublicUpdate(
        kind="question_asked",
        status="waiting_for_resident",
        message_vi="Cán bộ cần bạn bổ sung thông tin; thời hạn xử lý tạm dừng.",
        message_en="The member needs more information from you; the deadline is paused.",
        detail=event.question,
    )


def _resumed(event: CaseResumed) -> PublicUpdate:
    if event.reason == "answered":
        vi, en = "Đã nhận câu trả lời của bạn", "Your answer was received"
    else:
        vi, en = "Hết thời gian chờ bổ sung", "The wait for your answer ended"
    return PublicUpdate(
        kind="resumed",
        status="in_progress",
        message_vi=f"{vi}; phản ánh tiếp tục được xử lý.",
        message_en=f"{en}; work on the petition continues.",
        deadline=("set", _aware(event.due_at)) if event.due_at else None,
    )


def _rejected(event: CaseRejected) -> PublicUpdate:
    return PublicUpdate(
        kind="rejected",
        status="rejected",
        message_vi="Phản ánh không được tiếp nhận xử lý. Lý do:",
        message_en="The petition was not taken up. Reason:",
        detail=event.reason,
        deadline=("set", None),
    )


def _declined(event: CaseDeclined) -> PublicUpdate:
    # No names and no comment: a member's words about their own handling are internal.
    why_vi, why_en = _DECLINE_REASONS.get(event.reason_code, (event.reason_code, event.reason_code))
    return PublicUpdate(
        kind="declined",
        status=None,
        message_vi=f"Phản ánh được chuyển cho người phù hợp hơn ({why_vi}).",
        message_en=f"The petition is being passed to someone better placed ({why_en}).",
    )


def _overdue_at_top(_: CaseOverdueAtTop) -> PublicUpdate:
    return PublicUpdate(
        kind="overdue_at_top",
        status=None,
        message_vi="Phản ánh đã quá hạn; lãnh đạo cấp cao nhất đang theo dõi.",
        message_en="The petition is overdue; the highest leadership is following it.",
        once=True,
    )


# What each routing event means to the resident. Events missing here (internal notes, and any
# event this version does not know) are never shown.
_PUBLIC_UPDATES: dict[type[Any], Callable[[Any], PublicUpdate]] = {
    CaseAssigned: _assigned,
    CaseAccepted: _accepted,
    CaseResolved: _resolved,
    CaseReopened: _reopened,
    CaseEscalated: _escalated,
    CaseClosed: _closed,
    CaseQuestionAsked: _question_asked,
    CaseResumed: _resumed,
    CaseRejected: _rejected,
    CaseDeclined: _declined,
    CaseOverdueAtTop: _overdue_at_top,
}


def public_update(event: CaseEvent) -> PublicUpdate | None:
    """Translate a routing event into the resident's view; None for events residents never see
    (internal notes, and any event this version does not know)."""
    translate = _PUBLIC_UPDATES.get(type(event))
    return translate(event) if translate is not None else None


def supersedes(
    *,
    current_status: str,
    current_event_at: datetime | None,
    new_status: str,
    occurred_at: datetime,
) -> bool:
    """Whether a routing event should change the status: only when it is not older than the
    event behind the current status. Consumers of different events race, and a redelivered old
    event must not undo newer progress; it still adds its line to the timeline. A withdrawn,
    rejected or closed petition stays so."""
    if current_status in FINAL_STATUSES:
        return False
    if current_event_at is None:
        return True
    if occurred_at != current_event_at:
        return occurred_at > current_event_at
    return _TIE_RANK.get(new_status, 0) >= _TIE_RANK.get(current_status, 0)


EscalationCheck = Literal["allowed", "not_open", "not_overdue", "too_soon"]


def escalation_check(
    *,
    status: str,
    due_at: datetime | None,
    last_request_at: datetime | None,
    now: datetime,
) -> tuple[EscalationCheck, datetime | None]:
    """Whether the resident may ask for escalation now, and, when too soon, from when.

    Only a held case whose deadline has passed, and at most once per ESCALATION_REQUEST_EVERY.
    """
    if status not in ESCALATABLE_STATUSES:
        return "not_open", None
    if due_at is None or due_at > now:
        return "not_overdue", None
    if last_request_at is not None and now < last_request_at + ESCALATION_REQUEST_EVERY:
        return "too_soon", last_request_at + ESCALATION_REQUEST_EVERY
    return "allowed", None


@dataclass(frozen=True)
class ResidentActions:
    """What the resident may do with their petition now; the tracking page and the API agree."""

    give_feedback: bool
    answer: bool
    request_escalation: bool
    # When a refused escalation request becomes possible again (asked less than 24 h ago).
    escalation_allowed_at: datetime | None
    withdraw: bool
    stop_updates: bool
    erase_contact: bool


def resident_actions(row: Mapping[str, Any], now: datetime) -> ResidentActions:
    status = row["status"]
    check, allowed_at = escalation_check(
        status=status,
        due_at=row["due_at"],
        last_request_at=row["escalation_requested_at"],
        now=now,
    )
    erased = row["contact_erased_at"] is not None
    return ResidentActions(
        give_feedback=status == "resolved",
        answer=status == "waiting_for_resident" and row["question_id"] is not None,
        request_escalation=check == "allowed",
        escalation_allowed_at=allowed_at,
        withdraw=status not in FINAL_STATUSES,
        stop_updates=not erased and bool(row.get("wants_updates")),
        erase_contact=not erased and any(row.get(k) for k in ("name", "phone", "email")),
    )
