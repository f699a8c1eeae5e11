"""The production stream on a 3-node cluster keeps accepting and serving events when a node dies."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from shared.embedded_nats import EmbeddedNats, free_port
from shared.nats_auth import STREAM_OWNER, BusCredentials
from shared.streams import petitions_stream
from tests.support import eventually


@pytest.fixture
def cluster(tmp_path: Path, nats_credentials: BusCredentials) -> Iterator[dict[str, EmbeddedNats]]:
    names = ("n1", "n2", "n3")
    cluster_ports = {n: free_port() for n in names}
    nodes = {
        n: EmbeddedNats(
            store_dir=tmp_path / n,
            port=free_port(),
            server_name=n,
            cluster_port=cluster_ports[n],
            routes=[f"nats://127.0.0.1:{cluster_ports[o]}" for o in names if o != n],
            log_file=tmp_path / f"{n}.log",
            # The services' users and permissions, and routes that must give the route secret.
            credentials=nats_credentials,
        )
        for n in names
    }
    try:
        for node in nodes.values():
            node.start()
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


@pytest.fixture
async def js(cluster: dict[str, EmbeddedNats]) -> AsyncIterator[JetStreamContext]:
    """Intake's view: the stream's owner creates it and publishes to it."""
    nc = await nats.connect(
        [n.url for n in cluster.values()],
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
        **next(iter(cluster.values())).connect_options(STREAM_OWNER),
    )
    yield nc.jetstream(timeout=2)
    await nc.close()


async def test_replicated_stream_survives_losing_its_leader(
    cluster: dict[str, EmbeddedNats], js: JetStreamContext
) -> None:
    stream = petitions_stream(replicas=3)
    config = dataclasses.replace(stream.config, subjects=list(stream.subjects))

    async def create() -> StreamInfo | None:
        # The cluster elects its JetStream meta leader a moment after the routes connect.
        try:
            return await js.add_stream(config=config)
        except NatsError:
            return None

    info = await eventually(create, timeout=30, what="R3 stream created")
    assert info.config.num_replicas == 3

    first = await js.publish("petitions.submitted.v1", b"one", headers={"Nats-Msg-Id": "e1"})
    assert first.seq == 1

    async def leader() -> str | None:
        cluster_info = (await js.stream_info(stream.name)).cluster
        if cluster_info is None or len(cluster_info.replicas or []) != 2:
            return None
        return cluster_info.leader

    leader_name = await eventually(leader, timeout=30, what="stream leader with two replicas")
    cluster[leader_name].kill()

    async def publish_again() -> int | None:
        try:
            ack = await js.publish("petitions.submitted.v1", b"two", headers={"Nats-Msg-Id": "e2"})
        except NatsError:
            return None
        return ack.seq

    assert await eventually(publish_again, timeout=30, what="publish acked after a node died") == 2

    async def new_leader() -> str | None:
        try:
            cluster_info = (await js.stream_info(stream.name)).cluster
        except NatsError:
            return None
        name = cluster_info.leader if cluster_info else None
        return name if name != leader_name else None

    assert await eventually(new_leader, timeout=30, what="a new stream leader")
    survivors = [n for name, n in cluster.items() if name != leader_name]
    admin = await nats.connect([n.url for n in survivors], **survivors[0].connect_options())
    try:
        first_msg = await admin.jetstream().get_msg(stream.name, 1)
        second_msg = await admin.jetstream().get_msg(stream.name, 2)
    finally:
        await admin.close()
    assert (first_msg.data, second_msg.data) == (b"one", b"two")


async def test_a_route_without_the_route_secret_is_refused(
    cluster: dict[str, EmbeddedNats], tmp_path: Path
) -> None:
    """Routes skip user authentication, so an open route port would be an open bus."""
    n1 = cluster["n1"]
    intruder = EmbeddedNats(
        store_dir=tmp_path / "intruder",
        port=free_port(),
        server_name="intruder",
        cluster_port=free_port(),
        routes=[f"nats://127.0.0.1:{n1.cluster_port}"],
        log_file=tmp_path / "intruder.log",
    )
    intruder.start()
    try:

        async def refused() -> bool:
            return "authorization" in (tmp_path / "intruder.log").read_text().lower()

        await eventually(refused, timeout=20, what="route refused for lack of the secret")
        nc = await nats.connect(intruder.url)
        try:
            # Nothing of the cluster's account reaches the intruder's clients.
            with pytest.raises(NatsError):
                await nc.jetstream(timeout=1).stream_info("PETITIONS")
        finally:
            await nc.close()
    finally:
        intruder.stop()
