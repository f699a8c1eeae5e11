"""One scenario's world: the real stack (services.stack.Stack: nats-server and the three
services as processes) on free ports in a temporary directory, on SQLite or on a private
PostgreSQL server, with an SMTP sink, a webhook receiver and the injected clock."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from faults.infra import InjectedClock, PrivatePostgres, SmtpSink, Tmpfs, WebhookSink
from services.stack import SERVICES, UNTHROTTLED_ENV, Stack, file_sink
from shared.embedded_nats import EmbeddedNats, free_port
from shared.nats_auth import ADMIN, BusCredentials

BACKENDS = ("sqlite", "postgres")


class World:
    def __init__(
        self,
        name: str,
        backend: str,
        *,
        postgres: PrivatePostgres | None,
        keep: bool = False,
        env: Mapping[str, str] | None = None,
        nats_url: str | None = None,
        channels: str | None = None,
    ) -> None:
        self.name = name
        self.backend = backend
        self.postgres = postgres
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix=f"petitions-faults-{name}-{backend}-"))
        self.var = self.root / "var"
        self.var.mkdir()
        # The bus is authenticated as in production: each service its own NATS user, the suite
        # itself the operator (it reads the stream for the audit and publishes poison). The
        # embedded server makes its own; these are the cluster's (scenario 2).
        self.credentials = BusCredentials.ensure(self.root / "nats-auth")
        self.clock = InjectedClock(self.root / "clock")
        self.smtp = SmtpSink()
        self.smtp.up()
        self.webhook = WebhookSink()
        self.extra_env = dict(env or {})
        self.nats_url_override = nats_url
        self.channels = channels
        self.stack: Stack | None = None
        # Scenario 2's cluster (the stack then uses it instead of its own nats-server) and
        # scenario 4's small filesystems.
        self.cluster_nodes: dict[str, EmbeddedNats] = {}
        self.tmpfs: list[Tmpfs] = []
        self._engines: dict[str, AsyncEngine] = {}

    async def database_env(self) -> dict[str, str]:
        if self.backend == "sqlite":
            return {}
        assert self.postgres is not None
        tag = uuid.uuid4().hex[:8]
        return {
            f"PETITIONS_{svc.upper()}_DATABASE_URL": await self.postgres.create_database(
                f"faults_{tag}_{svc}"
            )
            for svc in SERVICES
        }

    async def start(self) -> Stack:
        env = {
            "PETITIONS_LOG_LEVEL": "INFO",
            "PETITIONS_LOG_FORMAT": "json",
            "PETITIONS_CLOCK_FILE": str(self.clock.path),
            # Members' assignment emails go out at once instead of after the batching window.
            "PETITIONS_NOTIFY_BATCH_WINDOW_MINUTES": "0",
            "PETITIONS_SMTP_HOST": "127.0.0.1",
            "PETITIONS_SMTP_PORT": str(self.smtp.port),
            # The load submits from one address, far above what a resident ever sends.
            **UNTHROTTLED_ENV,
            **(await self.database_env()),
            **self.extra_env,
        }
        if self.channels is not None:
            path = self.root / "channels.yaml"
            path.write_text(self.channels.replace("{webhook}", self.webhook.url))
            env["PETITIONS_NOTIFY_CHANNELS_FILE"] = str(path)
        self.stack = Stack(
            var_dir=self.var,
            ports={svc: free_port() for svc in SERVICES},
            nats_port=free_port(),
            nats_url=self.nats_url_override,
            nats_credentials=self.credentials,
            env=env,
            output=file_sink(self.root / "stack.log"),
            stop_grace=15,
        )
        self.stack.start()
        self.stack.wait_ready(timeout=120)
        return self.stack

    def engine(self, service: str) -> AsyncEngine:
        if service not in self._engines:
            assert self.stack is not None
            url = self.stack.database_url(service)
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                kwargs["connect_args"] = {"timeout": 30}
            self._engines[service] = create_async_engine(url, **kwargs)
        return self._engines[service]

    async def nats(self) -> NatsClient:
        """A NATS connection as the stack's own services make it (the audit reads the stream and
        scenario 7 publishes on it)."""
        assert self.stack is not None
        return await nats.connect(
            self.stack.nats_url.split(","),
            max_reconnect_attempts=3,
            **self.stack.nats_connect_options(ADMIN),
        )

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
        if self.stack is not None:
            self.stack.stop()
        self.smtp.down()
        self.webhook.close()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
