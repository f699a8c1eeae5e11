"""The one JetStream stream for petition events. Defined here only: `broker.start()` rewrites a
stream whose configuration differs, so two definitions would fight."""

from __future__ import annotations

from dataclasses import dataclass

from faststream.nats import JStream, NatsBroker, StorageType
from nats.js.api import DiscardPolicy
from nats.js.errors import NotFoundError

from shared.events.base import STREAM_SUBJECT_PREFIX

PETITIONS_STREAM = "PETITIONS"
# JetStream drops a re-published event id within this window; inboxes catch the rest.
DUPLICATE_WINDOW_S = 2 * 60 * 60
# Request/reply subjects stay outside the stream's subjects, or JetStream would answer them.
RPC_CONTACT_LOOKUP = "rpc.intake.contact.v1"
# notify asks routing who serves a unit, or for given members' name and work address.
RPC_ROUTING_MEMBERS = "rpc.routing.members.v1"
# notify asks routing for the area tree (names and parents), to name and aggregate units.
RPC_ROUTING_UNITS = "rpc.routing.units.v1"

# notify asks routing for a one-time account link just before emailing it (a token is minted).
RPC_ROUTING_ACCOUNT_LINK = "rpc.routing.account_link.v1"

DAY_S = 24 * 60 * 60
# How long the stream keeps an event: far longer than any outage a consumer should sit out,
# short enough that an erased petition's free text does not stay in the stream for ever.
DEFAULT_MAX_AGE_S = 30 * DAY_S
# The stream's size on disk at most. Full, it refuses new events (`discard=new`): they wait in
# the publishers' outboxes, so a consumer that lags is never robbed of events it has not read.
DEFAULT_MAX_BYTES = 1024**3


@dataclass(frozen=True)
class StreamLimits:
    """Retention of the petitions stream (settings `PETITIONS_STREAM_*`)."""

    replicas: int = 1
    max_age_s: float = DEFAULT_MAX_AGE_S
    max_bytes: int = DEFAULT_MAX_BYTES


def petitions_stream(limits: StreamLimits | None = None, *, replicas: int | None = None) -> JStream:
    limits = limits or StreamLimits()
    return JStream(
        PETITIONS_STREAM,
        description="Petition lifecycle events / Sự kiện vòng đời phản ánh",
        subjects=[f"{STREAM_SUBJECT_PREFIX}.>"],
        storage=StorageType.FILE,
        num_replicas=replicas or limits.replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=limits.max_age_s,
        max_bytes=limits.max_bytes,
        discard=DiscardPolicy.NEW,
        declare=True,
    )


async def ensure_stream(
    broker: NatsBroker, limits: StreamLimits | None = None, *, replicas: int | None = None
) -> None:
    """Create the petitions stream, or bring its settings to ours, whether or not this process
    subscribes to anything (FastStream declares streams only for its subscribers)."""
    js = broker.config.connection_state.stream
    wanted = petitions_stream(limits, replicas=replicas).config
    wanted.subjects = [f"{STREAM_SUBJECT_PREFIX}.>"]
    try:
        info = await js.stream_info(PETITIONS_STREAM)
    except NotFoundError:
        await js.add_stream(config=wanted)
        return
    have = info.config
    if (
        have.subjects != wanted.subjects
        or have.duplicate_window != wanted.duplicate_window
        or have.num_replicas != wanted.num_replicas
        or have.max_age != wanted.max_age
        or have.max_bytes != wanted.max_bytes
        or have.discard != wanted.discard
    ):
        await js.update_stream(config=wanted)
