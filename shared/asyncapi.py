"""The event catalogue as an AsyncAPI 3.0 document (`docs/asyncapi.yaml`), built from the
event classes so the document cannot drift from the code: a test regenerates and compares.

`python -m shared.asyncapi` writes the document; `--check` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from shared.events import CATALOGUE, Event
from shared.streams import (
    DUPLICATE_WINDOW_S,
    PETITIONS_STREAM,
    RPC_CONTACT_LOOKUP,
    RPC_ROUTING_MEMBERS,
    RPC_ROUTING_UNITS,
)

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"


def _name(cls: type[Event]) -> str:
    return cls.__name__


def build_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for subject, cls in sorted(CATALOGUE.items()):
        name = _name(cls)
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = schema
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (cls.__doc__ or "").strip(),
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "required": ["Nats-Msg-Id"],
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "description": "Equals event_id: JetStream drops a repeat within the duplicate window.",
                    }
                },
            },
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        channel_id = subject.replace(".", "_")
        channels[channel_id] = {
            "address": subject,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        producer = cls.__module__.rsplit(".", 1)[-1]
        operations[f"{producer}_publishes_{channel_id}"] = {
            "action": "send",
            "summary": f"{producer} publishes through its transactional outbox",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }
    doc = {"channels": channels, "operations": operations, "messages": messages}
    _request_reply(
        doc,
        channel_id="rpc_intake_contact",
        address=RPC_CONTACT_LOOKUP,
        description=(
            "Core NATS request/reply (not in the stream): notify asks intake for a resident's "
            "contact just before sending; the answer is used once and never stored."
        ),
        operation="notify_requests_contact",
        request="ContactLookupRequest",
        request_payload={
            "type": "object",
            "description": (
                "Either petition_id (one contact) or petition_ids (up to 500, answered as "
                "`contacts`: petition id → the single reply)."
            ),
            "properties": {
                "petition_id": {"type": "string", "format": "uuid"},
                "petition_ids": {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid"},
                    "maxItems": 500,
                },
            },
        },
        reply="ContactLookupReply",
        reply_payload={
            "type": "object",
            "description": "The single form's reply, or `contacts` for petition_ids.",
            "properties": {
                "contacts": {
                    "type": "object",
                    "additionalProperties": {"type": "object"},
                },
                "found": {"type": "boolean"},
                "name": {"type": ["string", "null"]},
                "email": {"type": ["string", "null"]},
                "phone": {"type": ["string", "null"]},
                "language": {"type": "string"},
                "wants_updates": {"type": "boolean"},
                "tracking_url": {"type": "string"},
            },
        },
    )
    # notify asks routing for a unit's members (the meeting digest) or for given members'
    # names and work addresses (notices whose event carries no address).
    _request_reply(
        doc,
        channel_id="rpc_routing_members",
        address=RPC_ROUTING_MEMBERS,
        description=(
            "Core NATS request/reply (not in the stream): notify asks routing who serves a unit, "
            "or for given members' names and work addresses, just before sending."
        ),
        operation="notify_requests_members",
        request="MemberLookupRequest",
        request_payload={
            "type": "object",
            "description": "Either unit_id (its active members) or member_ids (those members).",
            "properties": {
                "unit_id": {"type": "string"},
                "member_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 500},
            },
        },
        reply="MemberLookupReply",
        reply_payload={
            "type": "object",
            "required": ["members"],
            "properties": {
                "members": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name"],
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "email": {"type": ["string", "null"]},
                            "unit_id": {"type": "string"},
                            "role": {"type": "string", "enum": ["member", "leader", "admin"]},
                            "active": {"type": "boolean"},
                        },
                    },
                }
            },
        },
    )
    # notify asks routing for the area tree, to show units by name and to add a unit's figures
    # to those of the units below it.
    _request_reply(
        doc,
        channel_id="rpc_routing_units",
        address=RPC_ROUTING_UNITS,
        description=(
            "Core NATS request/reply (not in the stream): notify asks routing for the area tree "
            "(every unit's id, name, kind and parent)."
        ),
        operation="notify_requests_units",
        request="UnitLookupRequest",
        request_payload={"type": "object", "description": "Empty: the whole tree."},
        reply="UnitLookupReply",
        reply_payload={
            "type": "object",
            "required": ["units"],
            "properties": {
                "units": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "name"],
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "parent_id": {"type": ["string", "null"]},
                        },
                    },
                }
            },
        },
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Petitions events / Sự kiện phản ánh",
            "version": "1",
            "description": (
                f"All petition events travel on the JetStream stream `{PETITIONS_STREAM}` "
                f"(subjects `petitions.<event>.v<N>`, duplicate window {DUPLICATE_WINDOW_S} s). "
                "Every event carries event_id, occurred_at (UTC), petition_id, producer, "
                "correlation_id and causation_id. A new optional field keeps the version; a "
                "breaking change is a new subject version published beside the old one. "
                "Residents' contact data never travels in events."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4233",
                "protocol": "nats",
                "description": "The embedded nats-server started by `make up`",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _request_reply(
    doc: dict[str, dict[str, Any]],
    *,
    channel_id: str,
    address: str,
    description: str,
    operation: str,
    request: str,
    request_payload: dict[str, Any],
    reply: str,
    reply_payload: dict[str, Any],
) -> None:
    """A core NATS request/reply channel (outside the stream), its two messages, and the
    operation of the service that asks."""
    doc["channels"][channel_id] = {
        "address": address,
        "description": description,
        "messages": {
            request: {"$ref": f"#/components/messages/{request}"},
            reply: {"$ref": f"#/components/messages/{reply}"},
        },
    }
    for name, payload in ((request, request_payload), (reply, reply_payload)):
        doc["messages"][name] = {
            "name": name,
            "contentType": "application/json",
            "payload": payload,
        }
    doc["operations"][operation] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{request}"}],
        "reply": {
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{reply}"}],
        },
    }


def render() -> str:
    return yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if docs/asyncapi.yaml is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
        if current != text:
            sys.stderr.write("docs/asyncapi.yaml is stale: run `python -m shared.asyncapi`\n")
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
