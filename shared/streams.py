"""The one JetStream stream for petition events. Defined here only: `broker.start()` rewrites a
stream whose configuration differs, so two definitions would fight."""

from __future__ import annotations

from faststream.nats import JStream, NatsBroker, StorageType
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


def petitions_stream(*, replicas: int = 1) -> JStream:
    return JStream(
        PETITIONS_STREAM,
        description="Petition lifecycle events / Sự kiện vòng đời phản ánh",
        subjects=[f"{STREAM_SUBJECT_PREFIX}.>"],
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        declare=True,
    )


async def ensure_stream(broker: NatsBroker, *, replicas: int = 1) -> None:
    """Create the petitions stream, or bring its settings to ours, whether or not this process
    subscribes to anything (FastStream declares streams only for its subscribers)."""
    js = broker.config.connection_state.stream
    wanted = petitions_stream(replicas=replicas).config
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
    ):
        await js.update_stream(config=wanted)
