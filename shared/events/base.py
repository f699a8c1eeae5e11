"""The envelope every petition event carries, and how ids are made."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict

# Namespace for ids derived from other ids: a replay derives the same id, so JetStream and the
# inboxes deduplicate it.
_DERIVED_NAMESPACE = uuid.UUID("4b0e6d8e-2f3a-5c61-9a57-2c1f4f1d7a10")

STREAM_SUBJECT_PREFIX = "petitions"


def derived_id(*parts: object) -> uuid.UUID:
    """A deterministic event id from what makes the event unique (case, rung, transition, …)."""
    return uuid.uuid5(_DERIVED_NAMESPACE, ":".join(str(p) for p in parts))


class Event(BaseModel):
    """A fact that happened to a petition. Past-tense name, immutable, versioned by subject."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: ClassVar[str]
    event_id: uuid.UUID
    occurred_at: AwareDatetime
    petition_id: uuid.UUID
    producer: str
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None

    @classmethod
    def new(
        cls,
        *,
        producer: str,
        petition_id: uuid.UUID,
        cause: Event | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> Self:
        """Create an event; `cause` carries the correlation forward and becomes the causation."""
        eid = event_id or uuid.uuid4()
        return cls(
            event_id=eid,
            occurred_at=occurred_at or datetime.now(UTC),
            petition_id=petition_id,
            producer=producer,
            correlation_id=cause.correlation_id if cause else eid,
            causation_id=cause.event_id if cause else None,
            **fields,
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def versioned(event: str, version: int = 1) -> str:
    return f"{STREAM_SUBJECT_PREFIX}.{event}.v{version}"
