"""The one JetStream stream for petition events. Defined here only: `broker.start()` rewrites a
stream whose configuration differs, so two definitions would fight."""

from __future__ import annotations

from faststream.nats import JStream, StorageType

from shared.events.base import STREAM_SUBJECT_PREFIX

PETITIONS_STREAM = "PETITIONS"
# JetStream drops a re-published event id within this window; inboxes catch the rest.
DUPLICATE_WINDOW_S = 2 * 60 * 60
# Request/reply subjects stay outside the stream's subjects, or JetStream would answer them.
RPC_CONTACT_LOOKUP = "rpc.intake.contact.v1"


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
