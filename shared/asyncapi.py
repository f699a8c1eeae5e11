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
from pydantic import BaseModel

from shared.events import CATALOGUE, Event
from shared.rpc import (
    AccountLinkReply,
    AccountLinkRequest,
    ContactLookupRequest,
    ContactReply,
    ContactsReply,
    MemberLookupReply,
    MemberLookupRequest,
    UnitLookupReply,
    UnitLookupRequest,
)
from shared.streams import DUPLICATE_WINDOW_S, PETITIONS_STREAM

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"


def _name(cls: type[Event]) -> str:
    return cls.__name__


def _event_channels(doc: dict[str, dict[str, Any]], schemas: dict[str, Any]) -> None:
    """One channel, message and publishing operation per event subject of the stream."""
    for subject, cls in sorted(CATALOGUE.items()):
        name = _name(cls)
        schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = schema
        doc["messages"][name] = {
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
        doc["channels"][channel_id] = {
            "address": subject,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        producer = cls.__module__.rsplit(".", 1)[-1]
        doc["operations"][f"{producer}_publishes_{channel_id}"] = {
            "action": "send",
            "summary": f"{producer} publishes through its transactional outbox",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }


# The request/reply channels: who asks, what for, and the contract of each side.
_RPC: tuple[tuple[str, str, str, type[BaseModel], tuple[type[BaseModel], ...]], ...] = (
    (
        "rpc_intake_contact",
        "notify_requests_contact",
        "notify asks intake for a resident's contact just before sending; the answer is used "
        "once and never stored.",
        ContactLookupRequest,
        (ContactReply, ContactsReply),
    ),
    (
        "rpc_routing_members",
        "notify_requests_members",
        "notify asks routing who serves a unit (the meeting digest), or for given members' "
        "names and work addresses (notices whose event carries no address).",
        MemberLookupRequest,
        (MemberLookupReply,),
    ),
    (
        "rpc_routing_units",
        "notify_requests_units",
        "notify asks routing for the area tree (every unit's id, name, kind and parent), to "
        "show units by name and add a unit's figures to those of the units below it.",
        UnitLookupRequest,
        (UnitLookupReply,),
    ),
    (
        "rpc_routing_account_link",
        "notify_requests_account_link",
        "notify asks routing for a one-time account link (invitation or password reset) just "
        "before emailing it: routing mints the token for this message and keeps only its hash; "
        "notify puts it in the one email and stores it nowhere.",
        AccountLinkRequest,
        (AccountLinkReply,),
    ),
)


def _rpc_channels(doc: dict[str, dict[str, Any]], schemas: dict[str, Any]) -> None:
    for channel_id, operation, purpose, request, replies in _RPC:
        subject: str = getattr(request, "subject")  # noqa: B009 - a ClassVar of the model
        _request_reply(
            doc,
            schemas,
            channel_id=channel_id,
            address=subject,
            description=f"Core NATS request/reply (not in the stream): {purpose}",
            operation=operation,
            request=request,
            replies=replies,
        )


def build_document() -> dict[str, Any]:
    doc: dict[str, dict[str, Any]] = {"channels": {}, "operations": {}, "messages": {}}
    schemas: dict[str, Any] = {}
    _event_channels(doc, schemas)
    _rpc_channels(doc, schemas)
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
        "channels": doc["channels"],
        "operations": doc["operations"],
        "components": {"messages": doc["messages"], "schemas": schemas},
    }


def _request_reply(
    doc: dict[str, dict[str, Any]],
    schemas: dict[str, Any],
    *,
    channel_id: str,
    address: str,
    description: str,
    operation: str,
    request: type[BaseModel],
    replies: tuple[type[BaseModel], ...],
) -> None:
    """A core NATS request/reply channel (outside the stream), its messages with their
    schemas, and the operation of the service that asks."""
    names = [model.__name__ for model in (request, *replies)]
    for model in (request, *replies):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[model.__name__] = schema
        doc["messages"][model.__name__] = {
            "name": model.__name__,
            "summary": (model.__doc__ or "").strip(),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
    doc["channels"][channel_id] = {
        "address": address,
        "description": description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
    }
    doc["operations"][operation] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel_id}"},
        "messages": [{"$ref": f"#/channels/{channel_id}/messages/{names[0]}"}],
        "reply": {
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in names[1:]
            ],
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
