"""Event contracts: the envelope, derived ids, and the AsyncAPI document kept true to the code."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import jsonschema
import pytest
import yaml

from shared.asyncapi import DOCUMENT, build_document, render
from shared.events import (
    CATALOGUE,
    CaseAssigned,
    CaseEscalated,
    PetitionSubmitted,
    derived_id,
    parse_event,
)
from shared.rpc import ContactReply, ContactsReply, reply_bytes
from shared.streams import RPC_CONTACT_LOOKUP, RPC_ROUTING_MEMBERS, RPC_ROUTING_UNITS

ENVELOPE = {"event_id", "occurred_at", "petition_id", "producer", "correlation_id", "causation_id"}


def test_every_event_has_the_envelope_and_a_versioned_subject() -> None:
    for subject, cls in CATALOGUE.items():
        assert set(cls.model_fields) >= ENVELOPE, cls
        assert subject.startswith("petitions.")
        assert subject.rsplit(".", 1)[1].startswith("v")


def test_derived_ids_are_deterministic_and_distinct() -> None:
    case = uuid.uuid4()
    assert derived_id(case, 1, "escalated") == derived_id(case, 1, "escalated")
    assert derived_id(case, 1, "escalated") != derived_id(case, 2, "escalated")


def test_cause_carries_correlation_and_causation() -> None:
    first = PetitionSubmitted.new(
        producer="intake",
        petition_id=uuid.uuid4(),
        reference="PA-1",
        unit_id="u",
        category_id="other",
        title="t",
        description="d",
    )
    second = CaseAssigned.new(
        producer="routing",
        petition_id=first.petition_id,
        cause=first,
        case_id=uuid.uuid4(),
        rung=0,
        unit_id="u",
        member_id="m",
        member_username="m",
        member_name="M",
    )
    assert second.correlation_id == first.event_id
    assert second.causation_id == first.event_id
    assert parse_event(second.subject, second.to_json()) == second


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        CaseEscalated(
            event_id=uuid.uuid4(),
            occurred_at=datetime(2026, 1, 1),
            petition_id=uuid.uuid4(),
            producer="routing",
            correlation_id=uuid.uuid4(),
            case_id=uuid.uuid4(),
            from_rung=0,
            to_rung=1,
            reason="deadline_passed",
        )


def test_asyncapi_document_is_current() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(), "run: python -m shared.asyncapi"


def test_asyncapi_lists_every_event_and_its_schema_accepts_a_real_one() -> None:
    doc = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    addresses = {c["address"] for c in doc["channels"].values()}
    assert set(CATALOGUE) <= addresses
    schemas = doc["components"]["schemas"]
    event = CaseEscalated.new(
        producer="routing",
        petition_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        case_id=uuid.uuid4(),
        from_rung=0,
        to_rung=1,
        reason="deadline_passed",
    )
    schema = {**schemas["CaseEscalated"], "components": {"schemas": schemas}}
    jsonschema.validate(event.model_dump(mode="json"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event.model_dump(mode="json"), "reason": "bored"}, schema)
    assert build_document()["asyncapi"] == "3.0.0"


def test_request_reply_contracts_are_in_the_document_and_accept_real_replies() -> None:
    doc = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    schemas = doc["components"]["schemas"]
    channels = {c["address"]: c for c in doc["channels"].values()}
    for subject in (RPC_CONTACT_LOOKUP, RPC_ROUTING_MEMBERS, RPC_ROUTING_UNITS):
        for ref in channels[subject]["messages"].values():
            name = ref["$ref"].rsplit("/", 1)[1]
            assert doc["components"]["messages"][name]["payload"]["$ref"].endswith(name)
    erased = ContactReply(found=True, erased=True, wants_updates=False)
    reply = ContactsReply(contacts={str(uuid.uuid4()): erased, "x": ContactReply(found=False)})
    schema = {**schemas["ContactsReply"], "components": {"schemas": schemas}}
    jsonschema.validate(json.loads(reply_bytes(reply)), schema)
    assert json.loads(reply_bytes(erased)) == {
        "found": True,
        "erased": True,
        "wants_updates": False,
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"contacts": {"x": {"found": "maybe"}}}, schema)
