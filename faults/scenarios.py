"""The scenarios, in the issue's order. Each gets a fresh world, runs under the load, breaks
something, puts it back, and returns when the fault is over; the runner then measures the
recovery and audits (faults/audit.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from faults.audit import Findings
from faults.infra import SqliteLock, Tmpfs
from faults.world import World
from services.stack import SERVICES, Stack
from shared.embedded_nats import EmbeddedNats, free_port
from shared.events import (
    CaseAssigned,
    EscalationRequested,
    FeedbackGiven,
    PetitionSubmitted,
    PetitionWithdrawn,
    ResidentAnswered,
)
from shared.events.base import Event
from shared.nats_auth import BusCredentials
from shared.streams import PETITIONS_STREAM

HOUR = 3600.0
WEEK = 7 * 24 * HOUR


@dataclass
class Timing:
    """How long things last: the full run's, or `--quick`'s shortened ones for CI."""

    quick: bool

    @property
    def down(self) -> float:
        """How long a killed process stays dead."""
        return 3.0 if self.quick else 10.0

    @property
    def warmup(self) -> float:
        return 5.0 if self.quick else 15.0

    @property
    def tail(self) -> float:
        return 5.0 if self.quick else 15.0

    @property
    def outages(self) -> tuple[float, ...]:
        return (10.0, 30.0) if self.quick else (10.0, 60.0, 600.0)

    @property
    def settle(self) -> float:
        return 240.0 if self.quick else 900.0


@dataclass
class Context:
    """What a scenario's fault is given, and what it reports besides the audit."""

    world: World
    timing: Timing
    findings: Findings
    # Crafted petitions (scenario 7) the audit counts as well.
    extra_petitions: set[str] = field(default_factory=set)
    # Checked after the audit: (petition id, predicate on its case status, what was expected).
    expectations: list[tuple[str, Callable[[str | None], bool], str]] = field(default_factory=list)


Fault = Callable[[Context], Awaitable[None]]


@dataclass
class Scenario:
    key: str
    title: str
    fault: Fault
    backends: tuple[str, ...] = ("sqlite", "postgres")
    env: dict[str, str] = field(default_factory=dict)
    channels: str | None = None
    cluster: bool = False
    # Why it cannot run here (checked before the world is built), or None.
    precondition: Callable[[], str | None] = lambda: None


def _stack(ctx: Context) -> Stack:
    assert ctx.world.stack is not None
    return ctx.world.stack


# 1. kill -9 ------------------------------------------------------------------------------------


async def kill_each_then_two(ctx: Context) -> None:
    stack = _stack(ctx)
    for group in (("intake",), ("routing",), ("notify",), ("routing", "notify")):
        for svc in group:
            stack.kill(svc)
        await asyncio.sleep(ctx.timing.down)
        for svc in group:
            stack.start_service(svc)
        await asyncio.to_thread(stack.wait_ready, 120, services=group)
        await asyncio.sleep(ctx.timing.down)


# 2. nats-server --------------------------------------------------------------------------------


async def kill_nats(ctx: Context) -> None:
    stack = _stack(ctx)
    assert stack.nats is not None
    stack.nats.kill()
    await asyncio.sleep(ctx.timing.down * 2)
    stack.nats.start()


class Cluster:
    """Three nats-servers routed to each other on loopback (as tests/infra/test_nats_cluster.py)."""

    def __init__(self, root: Path, credentials: BusCredentials) -> None:
        names = ("n1", "n2", "n3")
        cluster_ports = {n: free_port() for n in names}
        self.nodes = {
            n: EmbeddedNats(
                store_dir=root / n,
                port=free_port(),
                server_name=n,
                cluster_port=cluster_ports[n],
                routes=[f"nats://127.0.0.1:{cluster_ports[o]}" for o in names if o != n],
                log_file=root / f"{n}.log",
                credentials=credentials,
            )
            for n in names
        }

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes.values())

    def start(self) -> None:
        for node in self.nodes.values():
            node.start()

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()


async def kill_stream_leader(ctx: Context) -> None:
    nodes = ctx.world.cluster_nodes
    nc = await ctx.world.nats()
    try:
        info = await nc.jetstream(timeout=5).stream_info(PETITIONS_STREAM)
        leader = info.cluster.leader if info.cluster else None
    finally:
        await nc.close()
    if leader not in nodes:
        ctx.findings.note(f"no stream leader found ({leader})")
        return
    nodes[leader].kill()
    ctx.findings.note(f"killed stream leader {leader}")
    await asyncio.sleep(ctx.timing.down * 3)
    nodes[leader].start()


# 3. database down ------------------------------------------------------------------------------


def database_outage(seconds: float) -> Fault:
    async def fault(ctx: Context) -> None:
        world = ctx.world
        if world.backend == "postgres":
            assert world.postgres is not None
            await asyncio.to_thread(world.postgres.stop)
            try:
                await asyncio.sleep(seconds)
            finally:
                await asyncio.to_thread(world.postgres.start)
            return
        stack = _stack(ctx)
        locks = []
        try:
            for svc in SERVICES:
                path = Path(stack.database_url(svc).split("///", 1)[1])
                locks.append(await asyncio.to_thread(SqliteLock, path))
            await asyncio.sleep(seconds)
        finally:
            for lock in locks:
                await asyncio.to_thread(lock.release)

    return fault


# 4. disk full ----------------------------------------------------------------------------------


def disk_full(ctx: Context) -> Awaitable[None]:
    return _disk_full(ctx)


async def _disk_full(ctx: Context) -> None:
    fillers = [await asyncio.to_thread(t.fill) for t in ctx.world.tmpfs]
    await asyncio.sleep(ctx.timing.down * 3)
    for filler in fillers:
        filler.unlink(missing_ok=True)
    # nats-server does not always take writes again once its store had no space left (the
    # stream refuses every publish until the server restarts; nats-server issue 7654): the
    # runbook's step, taken only when a probe publish is still refused.
    await asyncio.sleep(ctx.timing.down)
    if await _stream_takes_writes(ctx.world):
        return
    stack = _stack(ctx)
    assert stack.nats is not None
    ctx.findings.note(
        "JetStream still refused writes after the disk was freed: restarted nats-server (runbook)"
    )
    await asyncio.to_thread(stack.nats.stop)
    await asyncio.to_thread(stack.nats.start)


async def _stream_takes_writes(world: World, attempts: int = 3) -> bool:
    """Publish a probe no service handles (acknowledged and skipped by every consumer)."""
    nc = await world.nats()
    try:
        js = nc.jetstream(timeout=5)
        for _ in range(attempts):
            probe = {"event_id": str(uuid.uuid4()), "petition_id": "probe"}
            try:
                await js.publish("petitions.faults_probe.v1", json.dumps(probe).encode())
            except Exception:
                await asyncio.sleep(3.0)
                continue
            return True
        return False
    finally:
        await nc.close()


# 5. SMTP down, webhook failing -----------------------------------------------------------------


async def _pass_time(ctx: Context, seconds: float, *, steps: int) -> None:
    """Move the injected clock `seconds` forward in `steps`, letting the services work between."""
    for _ in range(steps):
        ctx.world.clock.advance(seconds / steps)
        await asyncio.sleep(1.0 if ctx.timing.quick else 3.0)


async def smtp_down_an_hour(ctx: Context) -> None:
    ctx.world.smtp.down()
    await asyncio.sleep(ctx.timing.down)
    await _pass_time(ctx, HOUR, steps=12)
    ctx.world.smtp.up()
    # Every retry planned during the outage (at most an hour apart) comes due.
    await _pass_time(ctx, 2 * HOUR, steps=8)


async def webhook_500_then_200(ctx: Context) -> None:
    hook = ctx.world.webhook
    hook.status = 500
    await _pass_time(ctx, 10 * 60, steps=10)
    refused = hook.refused
    hook.status = 200
    await _pass_time(ctx, 2 * HOUR, steps=8)
    ctx.findings.note(f"webhook refused {refused} deliveries with 500")


WEBHOOK_CHANNELS = """
timezone: Asia/Ho_Chi_Minh
webhooks:
  hook:
    url: "{webhook}"
preferences:
  residents: [hook, email]
  members: [hook, email]
batching:
  window_minutes: 0
  templates: [case_assigned]
"""


# 6. clock jumps --------------------------------------------------------------------------------


async def clock_jumps(ctx: Context) -> None:
    ctx.world.clock.advance(WEEK)
    await asyncio.sleep(ctx.timing.warmup)
    ctx.world.clock.advance(-HOUR)
    await asyncio.sleep(ctx.timing.warmup)


# 7. poison and out-of-order --------------------------------------------------------------------


def _submitted(petition_id: uuid.UUID) -> PetitionSubmitted:
    return PetitionSubmitted.new(
        producer="faults",
        petition_id=petition_id,
        reference=f"FAULT-{str(petition_id)[:8]}",
        unit_id="my-hoa-hung-my-khanh-2",
        category_id="roads_lighting",
        title="Phản ánh thử / A crafted petition",
        description="Sự kiện đến không theo thứ tự / Events out of order",
        wants_updates=False,
    )


EARLY: dict[str, Callable[[uuid.UUID, PetitionSubmitted], Event]] = {
    "withdrawn": lambda pid, s: PetitionWithdrawn.new(
        producer="faults", petition_id=pid, cause=s, reason="thử"
    ),
    "feedback_given": lambda pid, s: FeedbackGiven.new(
        producer="faults", petition_id=pid, cause=s, resolved=True
    ),
    "resident_answered": lambda pid, s: ResidentAnswered.new(
        producer="faults", petition_id=pid, cause=s, answer="Trả lời / Answer"
    ),
    "escalation_requested": lambda pid, s: EscalationRequested.new(
        producer="faults", petition_id=pid, cause=s
    ),
}


async def poison_and_out_of_order(ctx: Context) -> None:
    nc = await ctx.world.nats()
    js = nc.jetstream(timeout=10)

    async def publish(subject: str, body: bytes, msg_id: str) -> None:
        await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})

    try:
        await publish("petitions.submitted.v1", b"\xff not json", f"poison-{uuid.uuid4()}")
        await publish("petitions.withdrawn.v1", b"{}", f"poison-{uuid.uuid4()}")
        await publish(CaseAssigned.subject, b'{"event_id": 1}', f"poison-{uuid.uuid4()}")
        later: list[PetitionSubmitted] = []
        for kind, make in EARLY.items():
            pid = uuid.uuid4()
            submitted = _submitted(pid)
            early = make(pid, submitted)
            await publish(early.subject, early.to_json(), str(early.event_id))
            later.append(submitted)
            ctx.extra_petitions.add(str(pid))
            if kind == "withdrawn":
                ctx.expectations.append(
                    (
                        str(pid),
                        lambda s: s == "withdrawn",
                        "withdrawn before submitted: case withdrawn",
                    )
                )
        # Let each consumer meet the early events first.
        await asyncio.sleep(3.0)
        for submitted in later:
            await publish(submitted.subject, submitted.to_json(), str(submitted.event_id))
    finally:
        await nc.close()
    # The parked ones are parked only after their retries (about a minute).
    await asyncio.sleep(75.0)
    ctx.findings.note(
        f"published 3 poison messages and {len(EARLY)} out-of-order pairs at {datetime.now(UTC):%H:%M:%S}"
    )


def _tmpfs_reason() -> str | None:
    return Tmpfs.available()


def scenarios(timing: Timing) -> list[Scenario]:
    out = [
        Scenario("1-kill", "1 kill -9 each service, then two", kill_each_then_two),
        Scenario("2-nats", "2 nats-server kill -9", kill_nats),
    ]
    for seconds in timing.outages:
        out.append(
            Scenario(
                f"3-db-{int(seconds)}s",
                f"3 database down {int(seconds)} s",
                database_outage(seconds),
            )
        )
    out += [
        Scenario("7-poison", "7 poison + out-of-order", poison_and_out_of_order),
        Scenario("5-smtp", "5 SMTP down 1 h (clock)", smtp_down_an_hour),
        Scenario(
            "5-webhook", "5 webhook 500 then 200", webhook_500_then_200, channels=WEBHOOK_CHANNELS
        ),
        Scenario("6-clock", "6 clock +1 week, -1 hour", clock_jumps),
        Scenario(
            "2-cluster",
            "2 cluster loses stream leader",
            kill_stream_leader,
            cluster=True,
            env={"PETITIONS_STREAM_REPLICAS": "3"},
        ),
        Scenario(
            "4-disk",
            "4 disk full (NATS store, SQLite)",
            disk_full,
            precondition=_tmpfs_reason,
            # JetStream refuses a stream whose max bytes exceed its store's free space: the
            # stream's limit is set below the 64 MB volume, as docs/reliability.md tells
            # operators to do.
            env={"PETITIONS_STREAM_MAX_BYTES": str(16 * 1024 * 1024)},
        ),
    ]
    return out
