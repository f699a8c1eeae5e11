"""Ended sign-in sessions, as every service learns of them at once.

Routing owns the sessions (its database) and writes each revoked session id to the NATS KV
bucket `petitions_sessions`; every service watches the bucket into memory, and its staff
dependency refuses a token whose session is there. An entry only has to outlive the access
tokens of its session (`MAX_ACCESS_TTL`), so the bucket forgets after `KEEP`.

While the bus is unreachable a service keeps what it has learnt; a session revoked meanwhile
is refused by routing at once and by the others when the bus is back, or when its last access
token expires, whichever is first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime

import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from shared.auth import MAX_ACCESS_TTL
from shared.runtime import Runtime

SESSIONS_BUCKET = "petitions_sessions"
# How long a request waits for the bucket's answer about its session before the watch's
# knowledge stands.
LOOKUP_TIMEOUT_S = 0.5
# Twice the longest access token, so clock skew between hosts never lets one outlive its entry.
KEEP = 2 * MAX_ACCESS_TTL

log = structlog.get_logger(__name__)


async def sessions_bucket(js: JetStreamContext, *, replicas: int = 1) -> KeyValue:
    """The bucket, created if missing (routing, which writes it, calls this), replicated like
    the petitions stream. An existing bucket is used as it is: creating it again with another
    configuration (replicas changed since) would be refused, and revocations would stop."""
    try:
        return await js.key_value(SESSIONS_BUCKET)
    except BucketNotFoundError:
        pass
    return await js.create_key_value(
        KeyValueConfig(
            bucket=SESSIONS_BUCKET,
            description="Phiên đăng nhập đã kết thúc / revoked staff sessions",
            history=1,
            ttl=KEEP.total_seconds(),
            replicas=replicas,
        )
    )


def revocation_value(*, reason: str, at: datetime) -> bytes:
    return json.dumps({"reason": reason, "at": at.astimezone(UTC).isoformat()}).encode()


class RevokedSessions:
    """The revoked session ids this process knows, kept up to date by a KV watch."""

    def __init__(self) -> None:
        # Session id -> monotonic time after which no access token of it can be valid.
        self._until: dict[str, float] = {}
        self.synced = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._kv: KeyValue | None = None

    def __contains__(self, session_id: object) -> bool:
        until = self._until.get(str(session_id))
        return until is not None and until > time.monotonic()

    async def revoked(self, session_id: str) -> bool:
        """Whether the session has ended, asking the bucket itself when the watch has not
        said so: a sign-out is refused on the very next request, even one that reaches this
        service before the watch delivers the entry. Without the bus (or within a short
        wait), the watch's knowledge stands."""
        if session_id in self:
            return True
        kv = self._kv
        if kv is None:
            return False
        try:
            entry = await asyncio.wait_for(kv.get(session_id), LOOKUP_TIMEOUT_S)
        except KeyNotFoundError:
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("revoked_session_lookup_failed", error=type(exc).__name__)
            return False
        if not entry.value:
            return False
        # Remembered for the whole KEEP: longer than needed, never shorter.
        self.add(session_id)
        return True

    def add(self, session_id: str, *, age_s: float = 0.0) -> None:
        now = time.monotonic()
        if len(self._until) > 10_000:
            self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[session_id] = now + KEEP.total_seconds() - max(age_s, 0.0)

    def start(self, runtime: Runtime) -> None:
        """Watch the bucket for as long as the process runs, reconnecting after failures."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(runtime), name="revoked-sessions")

    async def stop(self) -> None:
        """Cancel the watch and wait until it has ended, cancelling again as long as it runs:
        nats-py can swallow a cancellation (in a request, in setting up the watcher), and the
        watch would then wait for bucket updates for ever."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()

    async def _watch(self, runtime: Runtime) -> None:
        pause = 0.2
        while not self._stopping:
            try:
                if not runtime.started:
                    await asyncio.sleep(0.2)
                    continue
                kv = await runtime.broker.connection.jetstream().key_value(SESSIONS_BUCKET)
                self._kv = kv
                watcher = await kv.watchall()
                pause = 0.2
                async for entry in watcher:
                    if entry is None:
                        self.synced = True
                        log.info("revoked_sessions_synced", known=len(self._until))
                        continue
                    if entry.value and entry.operation is None:
                        age = (datetime.now(UTC) - entry.created).total_seconds()
                        self.add(entry.key, age_s=age)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # nats-py can turn a cancellation that lands inside a request into its own
                # error: the service is stopping, not the bucket missing (else stop() hangs).
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                # Not created yet (routing creates it) or the bus is away: try again.
                log.info("revoked_sessions_waiting", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
