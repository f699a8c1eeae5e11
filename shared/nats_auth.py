"""Who may do what on the bus, derived from the code, and the nats-server configuration and
nkey credentials that enforce it.

Each service has its own NATS user (an nkey) in one JetStream account. Its permissions are
computed here from what the code declares, never kept as a second list by hand:

- it publishes only the events defined in its own module of `shared.events` (intake's
  `shared/events/intake.py`, routing's `shared/events/routing.py`, …);
- it answers only its own `rpc.<service>.*` contracts of `shared.rpc` (replies ride
  `allow_responses`: only to the inbox of a request it received, once);
- it requests only the contracts listed in `REQUESTS` (a test checks the list against the
  services' code);
- it reads the stream only through its own durable consumer (`shared.messaging.durable_name`),
  and only intake, the stream's owner, may create or update the stream;
- nobody may delete or purge a stream, or delete the petitions consumers;
- replies come back on the service's own inbox prefix (`_INBOX_<service>`), which no other
  service may subscribe to.

`admin` (the operator's user: inspection, tests, the fault suite) may do anything in the
account; keep its seed off the service machines.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nkeys
from faststream.nats.security import NatsCredentials, NatsNKey, NatsSecurity
from pydantic import BaseModel

from shared import rpc
from shared.events.base import Event
from shared.messaging import durable_name, inbox_prefix
from shared.streams import PETITIONS_STREAM

if TYPE_CHECKING:
    from shared.settings import CommonSettings

SERVICES: tuple[str, ...] = ("intake", "routing", "notify")
ACCOUNT = "PETITIONS"
SYSTEM_ACCOUNT = "SYS"
ADMIN = "admin"
SYSTEM_USER = "system"
# The stream is created (and brought to its definition) by intake: every petition starts there,
# and intake must take petitions into the stream while the other services are still down. The
# others only look it up and wait. Update is not granted more widely because a stream update can
# change its subjects, and a stream that captured another service's inbox would hand its replies
# (residents' contacts) to whoever reads the stream.
STREAM_OWNER = "intake"
# Revoked staff sessions (a KV bucket): routing writes it, every service reads and watches it.
SESSIONS_BUCKET = "petitions_sessions"
SESSIONS_WRITER = "routing"
# Which service asks which contracts; the answering side is the subject's `rpc.<service>.`.
REQUESTS: Mapping[str, tuple[type[BaseModel], ...]] = {
    "notify": (
        rpc.ContactLookupRequest,
        rpc.MemberLookupRequest,
        rpc.UnitLookupRequest,
        rpc.AccountLinkRequest,
    ),
}

JS_API = "$JS.API"
# Never granted to a service, and denied explicitly so that no later allow can open them.
ALWAYS_DENIED: tuple[str, ...] = (
    f"{JS_API}.STREAM.DELETE.>",
    f"{JS_API}.STREAM.PURGE.>",
    f"{JS_API}.STREAM.MSG.DELETE.>",
    f"{JS_API}.CONSUMER.DELETE.{PETITIONS_STREAM}.>",
    f"{JS_API}.ACCOUNT.PURGE.>",
)


@dataclass(frozen=True)
class Permissions:
    """One NATS user's permissions, in nats-server's own terms."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    deny_publish: tuple[str, ...] = ALWAYS_DENIED
    allow_responses: bool = True

    def as_config(self) -> dict[str, Any]:
        return {
            "publish": {"allow": list(self.publish), "deny": list(self.deny_publish)},
            "subscribe": {"allow": list(self.subscribe)},
            "allow_responses": self.allow_responses,
        }


def events_published_by(service: str) -> list[type[Event]]:
    """The event classes defined in `shared/events/<service>.py` (none if it has no module)."""
    try:
        module = importlib.import_module(f"shared.events.{service}")
    except ModuleNotFoundError:
        return []
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Event) and cls.__module__ == module.__name__ and "subject" in vars(cls)
    ]


def rpc_subject(contract: type[BaseModel]) -> str:
    return str(vars(contract)["subject"])


def rpc_contracts() -> list[type[BaseModel]]:
    """Every request contract in `shared.rpc` (a model with a `subject`)."""
    return [
        cls
        for _, cls in inspect.getmembers(rpc, inspect.isclass)
        if issubclass(cls, BaseModel) and isinstance(vars(cls).get("subject"), str)
    ]


def rpc_owner(subject: str) -> str:
    """`rpc.intake.contact.v1` is answered by intake."""
    return subject.split(".")[1]


def rpcs_answered_by(service: str) -> list[str]:
    subjects = (rpc_subject(c) for c in rpc_contracts())
    return sorted(s for s in subjects if rpc_owner(s) == service)


def rpcs_requested_by(service: str) -> list[str]:
    return sorted(rpc_subject(c) for c in REQUESTS.get(service, ()))


def _stream_api(service: str) -> list[str]:
    durable = durable_name(service)
    stream = PETITIONS_STREAM
    subjects = [
        f"{JS_API}.INFO",
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{durable}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.{durable}.>",
        f"{JS_API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{JS_API}.CONSUMER.INFO.{stream}.{durable}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]
    if service == STREAM_OWNER:
        subjects += [f"{JS_API}.STREAM.CREATE.{stream}", f"{JS_API}.STREAM.UPDATE.{stream}"]
    return subjects


def _sessions_api(service: str) -> list[str]:
    """A KV bucket is the stream `KV_<bucket>`: reads are direct gets or message gets, a watch
    is an ordered consumer the reader creates (and deletes) itself."""
    kv_stream = f"KV_{SESSIONS_BUCKET}"
    subjects = [
        f"{JS_API}.STREAM.INFO.{kv_stream}",
        f"{JS_API}.DIRECT.GET.{kv_stream}",
        f"{JS_API}.DIRECT.GET.{kv_stream}.>",
        f"{JS_API}.STREAM.MSG.GET.{kv_stream}",
        f"{JS_API}.CONSUMER.CREATE.{kv_stream}",
        f"{JS_API}.CONSUMER.CREATE.{kv_stream}.>",
        f"{JS_API}.CONSUMER.INFO.{kv_stream}.>",
        f"{JS_API}.CONSUMER.DELETE.{kv_stream}.>",
        f"$JS.FC.{kv_stream}.>",
    ]
    if service == SESSIONS_WRITER:
        subjects += [
            # Create only, never update: an update could add subjects (another service's reply
            # inbox) to the bucket's stream and read what it captures.
            f"{JS_API}.STREAM.CREATE.{kv_stream}",
            f"$KV.{SESSIONS_BUCKET}.>",
        ]
    return subjects


def service_permissions(service: str) -> Permissions:
    """What `service`'s NATS user may publish and subscribe to."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    events = sorted(cls.subject for cls in events_published_by(service))
    publish = [
        *events,
        *rpcs_requested_by(service),
        *_stream_api(service),
        *_sessions_api(service),
    ]
    subscribe = [*rpcs_answered_by(service), f"{inbox_prefix(service)}.>"]
    return Permissions(publish=tuple(publish), subscribe=tuple(subscribe))


def new_user_seed() -> str:
    seed: bytes = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode()


def public_key(seed: str) -> str:
    keys = nkeys.from_seed(seed.strip().encode())
    try:
        key: bytes = keys.public_key
        return key.decode()
    finally:
        keys.wipe()


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable by its owner only (0600 from the start, not chmod after)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)


@dataclass(frozen=True)
class BusCredentials:
    """The seed files of every user under one directory: `<user>.nk`, created once, reused."""

    directory: Path
    users: tuple[str, ...] = (*SERVICES, ADMIN, SYSTEM_USER)
    _keys: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def ensure(cls, directory: Path) -> BusCredentials:
        """Create the directory (0700) and any missing seed; keep the ones already there."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        creds = cls(directory)
        for user in creds.users:
            path = creds.seed_file(user)
            if not path.exists():
                _write_private(path, new_user_seed() + "\n")
            creds._keys[user] = public_key(path.read_text(encoding="utf-8"))
        if not creds.route_secret_file.exists():
            _write_private(creds.route_secret_file, secrets.token_hex(24) + "\n")
        return creds

    def seed_file(self, user: str) -> Path:
        return self.directory / f"{user}.nk"

    @property
    def route_secret_file(self) -> Path:
        return self.directory / "route.secret"

    @property
    def config_file(self) -> Path:
        return self.directory / "nats-server.conf"

    def public_key(self, user: str) -> str:
        return self._keys[user]

    def connect_options(self, user: str = ADMIN) -> dict[str, Any]:
        """nats-py `connect` keyword arguments for `user` (tests, tools, the fault suite)."""
        prefix = inbox_prefix(user) if user in SERVICES else "_INBOX"
        return {"nkeys_seed": str(self.seed_file(user)), "inbox_prefix": prefix}

    def server_config(self, cluster: Cluster | None = None) -> str:
        """nats-server configuration: the accounts, users and permissions; with `cluster`, also
        the cluster block, whose routes must present the route secret (routes bypass user
        authentication, so an open route port would be an open bus)."""
        users: list[dict[str, Any]] = [
            {"nkey": self.public_key(svc), "permissions": service_permissions(svc).as_config()}
            for svc in SERVICES
        ]
        users.append({"nkey": self.public_key(ADMIN)})
        accounts = {
            ACCOUNT: {"jetstream": "enabled", "users": users},
            SYSTEM_ACCOUNT: {"users": [{"nkey": self.public_key(SYSTEM_USER)}]},
        }
        lines = [
            "# Generated by petitions (shared/nats_auth.py); edit the code, not this file.",
            f"accounts: {json.dumps(accounts, indent=2)}",
            f"system_account: {json.dumps(SYSTEM_ACCOUNT)}",
        ]
        if cluster is not None:
            secret = self.route_secret_file.read_text(encoding="utf-8").strip()
            block = {
                "name": cluster.name,
                "listen": cluster.listen,
                "authorization": {"user": "route", "password": secret},
                "routes": [r.replace("://", f"://route:{secret}@", 1) for r in cluster.routes],
            }
            lines.append(f"cluster: {json.dumps(block, indent=2)}")
        return "\n".join(lines) + "\n"

    def write_server_config(self, cluster: Cluster | None = None, path: Path | None = None) -> Path:
        """Write (again, so permissions follow the code after an upgrade) the server config."""
        target = path or self.config_file
        _write_private(target, self.server_config(cluster))
        return target


@dataclass(frozen=True)
class Cluster:
    """A node's cluster settings: where it listens for routes, and the routes to the others
    (`nats://host:port`, the secret is added)."""

    listen: str
    routes: tuple[str, ...]
    name: str = "petitions"


def broker_options(service: str, settings: CommonSettings) -> dict[str, Any]:
    """FastStream `NatsBroker` options from a service's settings: its user, TLS, its inbox."""
    context = tls_context(settings) if settings.nats_tls_ca or settings.nats_tls_cert else None
    security: NatsSecurity | None = None
    if settings.nats_creds is not None:
        security = NatsCredentials(str(settings.nats_creds), ssl_context=context)
    elif settings.nats_nkey_seed is not None:
        security = NatsNKey.from_file(settings.nats_nkey_seed, ssl_context=context)
    elif context is not None:
        security = NatsSecurity(ssl_context=context)
    return {"security": security, "inbox_prefix": inbox_prefix(service)}


def connect_options(service: str, settings: CommonSettings) -> dict[str, Any]:
    """nats-py `connect` options from a service's settings (for a raw connection)."""
    options: dict[str, Any] = {"inbox_prefix": inbox_prefix(service)}
    if settings.nats_creds is not None:
        options["user_credentials"] = str(settings.nats_creds)
    elif settings.nats_nkey_seed is not None:
        options["nkeys_seed"] = str(settings.nats_nkey_seed)
    if settings.nats_tls_ca is not None or settings.nats_tls_cert is not None:
        options["tls"] = tls_context(settings)
    return options


def tls_context(settings: CommonSettings) -> ssl.SSLContext:
    """Verify the server against the given CA (or the system's) and present a client
    certificate when one is configured."""
    ca = settings.nats_tls_ca
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    if settings.nats_tls_cert is not None and settings.nats_tls_key is not None:
        context.load_cert_chain(str(settings.nats_tls_cert), str(settings.nats_tls_key))
    return context


def permissions_table() -> str:
    """A markdown table, one row per service, of what its NATS user may do (for the docs)."""
    rows = [
        "| service | publishes events | answers (subscribe) | requests | JetStream |",
        "| --- | --- | --- | --- | --- |",
    ]
    for svc in SERVICES:
        perms = service_permissions(svc)
        events = [s for s in perms.publish if s.startswith("petitions.")]
        js = [s for s in perms.publish if s.startswith(("$JS", "$KV"))]
        rows.append(
            "| "
            + " | ".join(
                [
                    svc,
                    _cell(events),
                    _cell([*rpcs_answered_by(svc), f"{inbox_prefix(svc)}.>"]),
                    _cell(rpcs_requested_by(svc)),
                    _cell(js),
                ]
            )
            + " |"
        )
    return "\n".join(rows) + "\n"


def _cell(subjects: list[str]) -> str:
    return "<br>".join(f"`{s}`" for s in subjects) if subjects else "—"
