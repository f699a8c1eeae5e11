"""The shapes of intake's JSON API, in and out: what `/openapi.json` documents and a generated
client relies on.

A request model types what may arrive; the rules of `services.intake.petitions` (blank after
cleaning, lengths counted after Unicode normalisation, a unit residents live in, consent) stay
the rule, and their refusals keep the bilingual per-field messages. That is why the text fields
carry their limits in `description` rather than `maxLength`: a raw string longer than the limit
may be within it once cleaned.

No `from __future__ import annotations`: FastAPI and pydantic read these annotations at runtime.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    WithJsonSchema,
)

from services.intake.catalog import Catalog, UnitKind
from services.intake.catalog import Category as CatalogCategory
from services.intake.catalog import Unit as CatalogUnit
from services.intake.kinds import RequestKind
from services.intake.petitions import (
    COMMENT_MAX,
    DESCRIPTION_MAX,
    EMAIL_MAX,
    LOCATION_MAX,
    NAME_MAX,
    PHONE_MAX,
    TITLE_MAX,
    PublicStatus,
    ResidentActions,
    holder_label,
    mask_email,
    mask_phone,
    status_label,
)
from shared.geo import map_link

# An aware UTC instant as ISO 8601 with its offset (`2026-05-04T03:00:00+00:00`), as the API
# has always written them.
Instant = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Language = Literal["vi", "en"]


def _text(limit: int, what: str, *, optional: bool = True) -> Any:
    description = (
        f"{what}; at most {limit} characters once cleaned (Unicode NFC, control characters "
        "removed, surrounding blanks trimmed)."
    )
    return (
        Field(default=None, description=description) if optional else Field(description=description)
    )


class Label(BaseModel):
    """A text in both languages."""

    vi: str
    en: str

    @classmethod
    def of(cls, pair: tuple[str, str]) -> "Label":
        return cls(vi=pair[0], en=pair[1])


# Requests


class PetitionSubmission(BaseModel):
    """A resident's petition. Stored only when every field is valid and consent is given."""

    unit_id: str = Field(description="Where the resident lives: a unit whose `selectable` is true.")
    category_id: str = Field(description="What it is about: a category's `id`.")
    title: str = _text(TITLE_MAX, "Required", optional=False)
    description: str = _text(DESCRIPTION_MAX, "Required", optional=False)
    location: str | None = _text(LOCATION_MAX, "Where exactly, in words")
    latitude: StrictFloat | None = Field(
        default=None,
        ge=-90,
        le=90,
        allow_inf_nan=False,
        description="An optional point, WGS 84 degrees, with `longitude` (both or neither).",
    )
    longitude: StrictFloat | None = Field(
        default=None,
        ge=-180,
        le=180,
        allow_inf_nan=False,
        description="An optional point, WGS 84 degrees, with `latitude` (both or neither).",
    )
    name: str | None = _text(NAME_MAX, "The resident's name")
    phone: str | None = _text(PHONE_MAX, "Digits, spaces and a leading +; at least 6 digits")
    email: str | None = _text(EMAIL_MAX, "An email address")
    notify: StrictBool | None = Field(
        default=False, description="Send progress messages (needs a phone or an email)."
    )
    consent: Literal[True] = Field(
        description="The resident agrees that the petition and contact data are processed."
    )
    language: Language | None = Field(default="vi", description="For messages to the resident.")
    kind: RequestKind | None = Field(
        default="petition",
        description="What kind of request this is: `petition` (phản ánh, kiến nghị; the "
        "default). A `complaint` about an administrative decision (khiếu nại) or a "
        "`denunciation` (tố cáo) follows its own law and office: answered 422 with where to "
        "file it instead (`guidance`), and nothing is stored.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "my-thoi-thoi-an-a-to-2",
                    "category_id": "roads_lighting",
                    "title": "Đèn đường hỏng",
                    "description": "Đèn đường trước nhà số 12 không sáng đã một tuần.",
                    "phone": "0912 345 678",
                    "notify": True,
                    "consent": True,
                }
            ]
        }
    )


class Feedback(BaseModel):
    """The resident's answer to a resolution: settled, or not (which reopens the case)."""

    resolved: StrictBool
    comment: str | None = _text(COMMENT_MAX, "Optional")


class Withdrawal(BaseModel):
    reason: str | None = _text(COMMENT_MAX, "Optional")


class QuestionAnswer(BaseModel):
    """The resident's answer to the question the holder of the case asked."""

    question_id: uuid.UUID = Field(description="The `question.id` of the tracking view.")
    answer: str = _text(COMMENT_MAX, "Required", optional=False)


class EscalationRequest(BaseModel):
    comment: str | None = _text(COMMENT_MAX, "Optional")


class LinkRecoveryRequest(BaseModel):
    """A lost tracking link asked for again: the petition's reference and the email or phone
    the resident gave with it."""

    reference: str = Field(
        max_length=40,
        description="As it reads on the receipt (any case, spaces, O for 0).",
        examples=["PA-7K3M-9QX2"],
    )
    contact: str = Field(
        max_length=254,
        description="The email (any case) or phone number (any spacing) given with the petition.",
    )


# Responses


class LinkRecoveryAccepted(BaseModel):
    """The same answer whether or not anything matched."""

    message: Label


class SubmissionReceipt(BaseModel):
    """What the resident keeps: the reference to quote, and the secret tracking link."""

    petition_id: uuid.UUID
    reference: str = Field(examples=["PA-7K3M-9QX2"])
    tracking_token: str = Field(description="Secret: whoever holds it sees the petition.")
    tracking_url: str
    status: PublicStatus


class UnitRef(BaseModel):
    id: str
    name: str = Field(description="With its parents: “Phường Mỹ Thới › Khóm Thới An A › Tổ 2”.")


class Category(BaseModel):
    id: str
    name_vi: str
    name_en: str

    @classmethod
    def of(cls, category: CatalogCategory) -> "Category":
        return cls(id=category.id, name_vi=category.name_vi, name_en=category.name_en)


class PublicView(BaseModel):
    """What anyone holding the reference may see: status and dates, no content, no contact."""

    reference: str
    status: PublicStatus
    status_label: Label
    submitted_at: Instant
    status_changed_at: Instant
    due_at: Instant | None
    unit: UnitRef
    category: Category

    @classmethod
    def of(cls, row: Mapping[str, Any], catalog: Catalog) -> "PublicView":
        return cls(**_public_fields(row, catalog))


def _public_fields(row: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    category_id = row["category_id"]
    known = catalog.categories.get(category_id)
    return {
        "reference": row["reference"],
        "status": row["status"],
        "status_label": Label.of(status_label(row["status"])),
        "submitted_at": row["submitted_at"],
        "status_changed_at": row["status_changed_at"],
        "due_at": row["due_at"],
        "unit": UnitRef(id=row["unit_id"], name=catalog.path_name(row["unit_id"])),
        "category": Category.of(known)
        if known
        else Category(id=category_id, name_vi=category_id, name_en=category_id),
    }


class Question(BaseModel):
    id: uuid.UUID
    text: str


class MaskedContact(BaseModel):
    """The resident's contact as they gave it, masked: enough to recognise, not to read."""

    name: str | None
    email: str | None = Field(examples=["a***@example.vn"])
    phone: str | None = Field(examples=["***678"])


class TimelineLine(BaseModel):
    kind: str
    occurred_at: Instant
    message_vi: str
    message_en: str
    detail: str | None


class TrackingView(PublicView):
    """The resident's own view: the public one plus content, a masked contact, the timeline
    and what the resident may do now."""

    petition_id: uuid.UUID
    title: str
    description: str
    location: str | None
    latitude: float | None = Field(description="The point the resident gave, if any.")
    longitude: float | None
    map_url: str | None = Field(description="The point on openstreetmap.org, if there is one.")
    language: Language
    rung: int | None
    holder: Label | None = Field(description="Who holds the case now, in words.")
    question: Question | None = Field(description="The question awaiting the resident's answer.")
    can_give_feedback: bool
    can_answer: bool
    can_request_escalation: bool
    escalation_allowed_at: Instant | None = Field(
        description="When an escalation request refused as too soon becomes possible again."
    )
    can_withdraw: bool
    wants_updates: bool
    contact_erased: bool
    contact: MaskedContact | None
    timeline: list[TimelineLine]

    @classmethod
    def build(
        cls, row: Mapping[str, Any], catalog: Catalog, actions: ResidentActions
    ) -> "TrackingView":
        erased = row["contact_erased_at"] is not None
        return cls(
            **_public_fields(row, catalog),
            petition_id=row["id"],
            title=row["title"],
            description=row["description"],
            location=row["location"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            map_url=map_link(row["latitude"], row["longitude"]),
            language=row["language"],
            rung=row["rung"],
            holder=Label.of(holder_label(row["rung"])) if row["rung"] is not None else None,
            question=Question(id=row["question_id"], text=row["question_text"])
            if actions.answer
            else None,
            can_give_feedback=actions.give_feedback,
            can_answer=actions.answer,
            can_request_escalation=actions.request_escalation,
            escalation_allowed_at=actions.escalation_allowed_at,
            can_withdraw=actions.withdraw,
            wants_updates=bool(row["wants_updates"]),
            contact_erased=erased,
            contact=None
            if erased
            else MaskedContact(
                name=row["name"], email=mask_email(row["email"]), phone=mask_phone(row["phone"])
            ),
            timeline=[TimelineLine.model_validate(line) for line in row["timeline"]],
        )


class StatusChanged(BaseModel):
    """The petition's status after the resident's action."""

    status: PublicStatus
    status_label: Label

    @classmethod
    def to(cls, status: str) -> "StatusChanged":
        return cls(status=status, status_label=Label.of(status_label(status)))


class EscalationAsked(BaseModel):
    requested: Literal[True]
    next_allowed_at: Instant = Field(description="From when another request may be made.")


class UpdatesStopped(BaseModel):
    wants_updates: Literal[False]
    changed: bool = Field(description="False when updates were already off.")


class ContactErased(BaseModel):
    contact_erased: Literal[True]
    changed: bool = Field(description="False when there was nothing left to erase.")


class Unit(BaseModel):
    id: str
    parent_id: str | None
    kind: UnitKind
    name: str
    path_name: str
    selectable: bool = Field(description="A resident may give it as `unit_id`.")

    @classmethod
    def of(cls, unit: CatalogUnit, catalog: Catalog) -> "Unit":
        return cls(
            id=unit.id,
            parent_id=unit.parent_id,
            kind=unit.kind,
            name=unit.name,
            path_name=catalog.path_name(unit.id),
            selectable=catalog.is_selectable(unit.id),
        )
