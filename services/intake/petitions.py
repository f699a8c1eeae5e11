"""Rules for petitions: what a valid submission is, how references and tracking tokens are made,
and what residents see of routing's work on their case."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from services.intake.catalog import Catalog
from shared.events import (
    CaseAccepted,
    CaseAssigned,
    CaseClosed,
    CaseEscalated,
    CaseEvent,
    CaseReopened,
    CaseResolved,
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
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class FieldError:
    field: str
    message_vi: str
    message_en: str

    @property
    def message(self) -> str:
        return f"{self.message_vi} / {self.message_en}"


class InvalidSubmission(ValueError):
    """A submission that breaks one or more rules; each error names its field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message_en}" for e in errors))
        self.errors = errors


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

    @property
    def wants_updates(self) -> bool:
        """Updates need both the resident's wish and a way to reach them."""
        return self.notify and bool(self.email or self.phone)


def clean_text(value: str) -> str:
    """NFC (Vietnamese typed with different keyboards compares equal), no control characters,
    no surrounding blanks."""
    return _CONTROL_RE.sub("", unicodedata.normalize("NFC", value)).strip()


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
    phone = _text(data, "phone", errors, required=False, max_len=PHONE_MAX)
    if phone is not None and (not _PHONE_RE.match(phone) or sum(c.isdigit() for c in phone) < 6):
        errors.append(FieldError("phone", "số điện thoại không hợp lệ", "not a valid phone number"))
    email = _text(data, "email", errors, required=False, max_len=EMAIL_MAX)
    if email is not None and not _EMAIL_RE.match(email):
        errors.append(
            FieldError("email", "địa chỉ email không hợp lệ", "not a valid email address")
        )
    notify = _flag(data, "notify", errors)
    if data.get("consent") is not True:
        errors.append(
            FieldError(
                "consent",
                "cần đồng ý để phản ánh được xử lý",
                "consent is required to process the petition",
            )
        )
    language = data.get("language") or "vi"
    if language not in LANGUAGES:
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
    )


def validate_comment(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidSubmission([FieldError("comment", "phải là chuỗi ký tự", "must be text")])
    value = clean_text(raw)
    if len(value) > COMMENT_MAX:
        raise InvalidSubmission(
            [
                FieldError(
                    "comment", f"tối đa {COMMENT_MAX} ký tự", f"at most {COMMENT_MAX} characters"
                )
            ]
        )
    return value or None


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
    "resolved",
    "feedback_given",
    "reopened",
    "escalated",
    "closed",
]

STATUS_LABELS: dict[str, tuple[str, str]] = {
    "submitted": ("Đã tiếp nhận", "Submitted"),
    "assigned": ("Đã giao cán bộ xử lý", "Assigned"),
    "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã có kết quả xử lý", "Resolved"),
    "feedback_given": ("Đã nhận ý kiến của bạn", "Feedback received"),
    "reopened": ("Được xử lý lại", "Reopened"),
    "escalated": ("Đã chuyển lên cấp trên", "Escalated"),
    "closed": ("Đã đóng", "Closed"),
}

# Two events stamped with the same instant are applied in lifecycle order, whatever order
# their consumers see them in (routing emits "escalated" and the next "assigned" together).
_TIE_RANK: dict[str, int] = {
    "submitted": 0,
    "escalated": 1,
    "reopened": 1,
    "assigned": 2,
    "in_progress": 3,
    "resolved": 4,
    "feedback_given": 4,
    "closed": 5,
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


def status_label(status: str) -> tuple[str, str]:
    return STATUS_LABELS.get(status, (status, status))


@dataclass(frozen=True)
class PublicUpdate:
    """What a routing event means to the resident: a status, a timeline line, maybe a deadline."""

    status: PublicStatus
    message_vi: str
    message_en: str
    detail: str | None = None
    # None: keep the deadline; ("set", x) replaces it (x None clears it).
    deadline: tuple[Literal["set"], datetime | None] | None = None
    rung: int | None = None


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def public_update(event: CaseEvent) -> PublicUpdate | None:
    """Translate a routing event into the resident's view; None for events residents never see
    (internal notes, and any event this version does not know)."""
    match event:
        case CaseAssigned():
            level = "cán bộ phụ trách" if event.rung == 0 else f"cấp xử lý {event.rung}"
            level_en = "a member serving your area" if event.rung == 0 else f"level {event.rung}"
            return PublicUpdate(
                status="assigned",
                message_vi=f"Phản ánh đã được giao cho {level}.",
                message_en=f"The petition was assigned to {level_en}.",
                deadline=("set", _aware(event.due_at)),
                rung=event.rung,
            )
        case CaseAccepted():
            return PublicUpdate(
                status="in_progress",
                message_vi="Cán bộ đã nhận xử lý phản ánh.",
                message_en="A member has taken the petition on.",
            )
        case CaseResolved():
            return PublicUpdate(
                status="resolved",
                message_vi="Phản ánh đã được giải quyết. Vui lòng cho biết ý kiến của bạn.",
                message_en="The petition was resolved. Please tell us whether it is settled.",
                detail=event.explanation,
                deadline=("set", None),
            )
        case CaseReopened():
            return PublicUpdate(
                status="reopened",
                message_vi="Phản ánh được mở lại để tiếp tục xử lý.",
                message_en="The petition was reopened for further work.",
                deadline=("set", None),
            )
        case CaseEscalated():
            why_vi, why_en = _ESCALATION_REASONS.get(event.reason, (event.reason, event.reason))
            return PublicUpdate(
                status="escalated",
                message_vi=f"Phản ánh đã được chuyển lên cấp trên ({why_vi}).",
                message_en=f"The petition was escalated ({why_en}).",
                rung=event.to_rung,
            )
        case CaseClosed():
            why_vi, why_en = _CLOSE_REASONS.get(event.reason, (event.reason, event.reason))
            return PublicUpdate(
                status="closed",
                message_vi=f"Phản ánh đã đóng ({why_vi}).",
                message_en=f"The petition was closed ({why_en}).",
                deadline=("set", None),
            )
    return None


def supersedes(
    *,
    current_status: str,
    current_event_at: datetime | None,
    new_status: str,
    occurred_at: datetime,
) -> bool:
    """Whether a routing event should change the status: only when it is not older than the
    event behind the current status. Consumers of different events race, and a redelivered old
    event must not undo newer progress; it still adds its line to the timeline."""
    if current_event_at is None:
        return True
    if occurred_at != current_event_at:
        return occurred_at > current_event_at
    return _TIE_RANK.get(new_status, 0) >= _TIE_RANK.get(current_status, 0)
