"""`make bench`: how many petitions the stack accepts, and how many it carries all the way through.

For SQLite and PostgreSQL, each mode on a fresh stack (`services.stack.Stack`: nats-server and
the three services as processes, on free ports in a temporary directory):

- saturation: `wrk -t2 -c64 -d60s` POSTing the bench petition as fast as answers come back;
- fixed offered rates at 25 %, 50 % and 80 % of that backend's measured saturation rate.

Per mode: accepted/s; the sustained end-to-end rate (petitions assigned with the member's and
the resident's emails written, over the time from the first submission until the last one was);
submit→assigned and submit→member-emailed latencies; CPU seconds per petition per process; RSS
per process idle and under load. Beside them, in the same run: the reference endpoint
(`bench/reference_app.py`) under the same wrk saturation, and the raw JetStream publish rate.
Prints a Markdown table and the issue's targets as PASS/FAIL; writes `.bench/results.json`.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.outcome import assigned_count, mail_counts, stored_count, timeline  # noqa: E402
from bench.probe import RssSampler, cpu_snapshot, rss_snapshot  # noqa: E402
from bench.report import markdown, targets  # noqa: E402
from bench.wrk import WrkMissing, WrkResult, ensure_wrk, petition_body, run_wrk  # noqa: E402
from services.stack import SERVICES, UNTHROTTLED_ENV, Stack, file_sink  # noqa: E402
from shared.embedded_nats import EmbeddedNats, free_port  # noqa: E402

# The petition every request submits (its title gets a unique tag). The resident gives an
# email address and asks for updates, so each petition causes two emails: "received" to the
# resident and "assigned" to the member.
PETITION: dict[str, Any] = {
    "unit_id": "my-hoa-hung-my-khanh-2",
    "category_id": "roads_lighting",
    "title": "Đèn đường hỏng / Street light out",
    "description": "Đèn đường trước nhà văn hóa ấp bị hỏng ba hôm nay. (bench)",
    "email": "nguoidan.bench@example.org",
    "notify": True,
    "consent": True,
}
FRACTIONS = (0.25, 0.5, 0.8)
THREADS = 2
DEFAULT_PG_URL = os.environ.get(
    "PETITIONS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class ModeResult:
    """One mode on one backend: the load, what came out of it, and what it cost."""

    backend: str
    mode: str
    offered_per_s: float | None
    seconds: float
    requests: int
    accepted: int
    accepted_per_s: float
    http_ms: dict[str, float]
    stored: int
    complete: int
    drained: bool
    end_to_end_per_s: float
    last_complete_after_load_s: float | None
    assigned_ms: list[float] = field(default_factory=list)
    member_ms: list[float] = field(default_factory=list)
    resident_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    # CPU over the petitions each process had done its part for by the end of the wait (all of
    # them when drained): intake and nats-server every stored one, routing those assigned,
    # notify half the emails written (two per petition).
    cpu_ms_per_petition: dict[str, float] = field(default_factory=dict)
    rss_idle: dict[str, int] = field(default_factory=dict)
    rss_peak: dict[str, int] = field(default_factory=dict)
    rss_idle_total: int = 0
    rss_peak_total: int = 0
    wrk_cpu_s: float = 0.0
    note: str = ""


@dataclass
class PlainRate:
    name: str
    seconds: float
    accepted: int
    accepted_per_s: float
    http_ms: dict[str, float] = field(default_factory=dict)
    note: str = ""


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None without data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class Profiler:
    """py-spy on every service for one load (raw collapsed stacks, outside the repository)."""

    def __init__(self, directory: Path, label: str, pids: dict[str, int]) -> None:
        self.directory = directory
        self.label = label
        self.pids = pids
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        binary = Path(sys.executable).parent / "py-spy"
        if not binary.exists():
            raise SystemExit("--profile cần py-spy / needs py-spy: .venv/bin/pip install py-spy")
        self.directory.mkdir(parents=True, exist_ok=True)
        for svc, pid in self.pids.items():
            if svc == "nats-server":
                continue
            out = self.directory / f"{self.label}-{svc}.txt"
            self.procs.append(
                subprocess.Popen(
                    [
                        str(binary), "record", "--pid", str(pid), "--format", "raw",
                        "--rate", "50", "--nonblocking", "-o", str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print(f"  profiles: {self.directory}/{self.label}-*.txt", flush=True)


async def settled_count(database_url: str) -> int:
    """Petitions stored, once the requests wrk left in flight when it stopped have landed."""
    last = await stored_count(database_url)
    for _ in range(30):
        await asyncio.sleep(1)
        now = await stored_count(database_url)
        if now == last:
            break
        last = now
    return last


async def drain(
    *, nc: Any, mail_dir: Path, expected: int, settle: float, stall: float
) -> tuple[bool, float]:
    """Wait until `expected` petitions are assigned with both emails written (counted, not
    matched), or nothing moved for `stall` seconds, or `settle` seconds passed."""
    started = time.monotonic()
    last: tuple[int, int, int] | None = None
    moved = started
    while True:
        counts = (await assigned_count(nc), *mail_counts(mail_dir))
        if min(counts) >= expected:
            return True, time.monotonic() - started
        if counts != last:
            last, moved = counts, time.monotonic()
        now = time.monotonic()
        if now - moved > stall or now - started > settle:
            print(
                f"  not drained: assigned {counts[0]}, member emails {counts[1]}, "
                f"resident emails {counts[2]} of {expected}",
                flush=True,
            )
            return False, now - started
        await asyncio.sleep(1)


async def run_mode(
    backend: str,
    mode: str,
    rate: float | None,
    env: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
) -> ModeResult:
    label = f"{backend}-{mode}".replace("%", "pct")  # '%' in a SQLite URL reads as an escape
    var = workdir / label
    stack = Stack(
        var_dir=var,
        ports={svc: free_port() for svc in SERVICES},
        nats_port=free_port(),
        # Measure delivery, not the batching window that holds members' emails by design.
        # Measure the stack, not the public rate limit (every request comes from one address).
        env={"PETITIONS_NOTIFY_BATCH_WINDOW_MINUTES": "0", **UNTHROTTLED_ENV, **env},
        output=file_sink(workdir / f"{label}.log"),
    )
    offered = f" at {rate:.1f}/s offered" if rate else ""
    print(f"[{label}] starting the stack{offered} (load average {load_average()})", flush=True)
    stack.start()
    try:
        await asyncio.to_thread(stack.wait_ready, 180)
        assert stack.nats is not None
        assert stack.nats.process is not None
        pids = {svc: stack.pid(svc) for svc in SERVICES} | {"nats-server": stack.nats.process.pid}
        nc = await nats.connect(stack.nats_url, **stack.nats_connect_options())
        try:
            return await _measure(stack, nc, pids, backend, mode, rate, args, workdir, var)
        finally:
            await nc.close()
    finally:
        await asyncio.to_thread(stack.stop)


async def _measure(
    stack: Stack,
    nc: Any,
    pids: dict[str, int],
    backend: str,
    mode: str,
    rate: float | None,
    args: argparse.Namespace,
    workdir: Path,
    var: Path,
) -> ModeResult:
    label = var.name
    url = stack.url("intake") + "/api/v1/petitions"
    body = petition_body(PETITION)
    db_url = stack.database_url("intake")
    mail_dir = var / "mail"
    # Warm-up: ten petitions through the whole pipeline (imports, caches, prepared statements).
    await asyncio.to_thread(
        run_wrk, url, body=body, workdir=workdir / label, tag="w",
        duration=2, connections=2, threads=1, rate=5,
    )  # fmt: skip
    warm = await stored_count(db_url)
    await drain(nc=nc, mail_dir=mail_dir, expected=warm, settle=60, stall=30)
    await asyncio.sleep(1)
    rss_idle = rss_snapshot(pids)

    tag = "s" if rate is None else f"r{mode.rstrip('%')}"
    cpu_before = cpu_snapshot(pids)
    sampler = RssSampler(pids)
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler.run(stop))
    profiler = None
    if args.profile and rate is None:
        profiler = Profiler(Path(args.profile), label, pids)
        profiler.start()
    load_started = time.time()
    wrk: WrkResult = await asyncio.to_thread(
        run_wrk, url, body=body, workdir=workdir / label, tag=tag,
        duration=args.duration, connections=args.connections, threads=THREADS, rate=rate,
    )  # fmt: skip
    load_ended = load_started + wrk.seconds
    stored = await settled_count(db_url)
    print(
        f"  {wrk.ok} accepted ({wrk.rate:.1f}/s"
        + (f", offered {rate:.1f}/s" if rate else "")
        + f", {wrk.failed} failed); waiting for assignments and emails (≤ {args.settle:.0f}s)",
        flush=True,
    )
    drained, _ = await drain(
        nc=nc, mail_dir=mail_dir, expected=stored, settle=args.settle, stall=args.stall
    )
    cpu_after = cpu_snapshot(pids)
    stop.set()
    await sampling
    if profiler is not None:
        profiler.stop()

    seen, ours = await timeline(database_url=db_url, nc=nc, mail_dir=mail_dir, sent=wrk.sent)
    complete = seen.complete()
    first_sent = min(seen.sent.values(), default=load_started)
    last_done = max(complete.values(), default=None)
    e2e = len(complete) / (last_done - first_sent) if last_done and last_done > first_sent else 0.0
    done_by = {
        "intake": ours,
        "routing": len(seen.assigned),
        "notify": (len(seen.member) + len(seen.resident)) / 2,
        "nats-server": ours,
    }
    cpu_s = {k: cpu_after[k] - cpu_before[k] for k in pids}
    notes = []
    if rate and wrk.sent_rate < 0.95 * rate:
        notes.append(f"offered rate not held: {wrk.sent_rate:.1f}/s sent")
    if len(complete) < ours:
        notes.append(f"{ours - len(complete)} of {ours} not through in time")
    return ModeResult(
        backend=backend,
        mode=mode,
        offered_per_s=rate,
        seconds=wrk.seconds,
        requests=wrk.requests,
        accepted=wrk.ok,
        accepted_per_s=wrk.rate,
        http_ms=wrk.latency_ms,
        stored=ours,
        complete=len(complete),
        drained=drained and len(complete) == ours,
        end_to_end_per_s=e2e,
        last_complete_after_load_s=(last_done - load_ended) if last_done else None,
        assigned_ms=[(seen.assigned[p] - t) * 1000 for p, t in seen.sent.items() if p in seen.assigned],
        member_ms=[(seen.member[p] - t) * 1000 for p, t in seen.sent.items() if p in seen.member],
        resident_ms=[(seen.resident[p] - t) * 1000 for p, t in seen.sent.items() if p in seen.resident],
        cpu_s=cpu_s,
        cpu_ms_per_petition={k: v * 1000 / done_by[k] for k, v in cpu_s.items() if done_by[k]},
        rss_idle=rss_idle,
        rss_peak=dict(sampler.peak),
        rss_idle_total=sum(rss_idle.values()),
        rss_peak_total=sampler.peak_total,
        wrk_cpu_s=wrk.cpu_seconds,
        note="; ".join(notes),
    )  # fmt: skip


async def raw_publish_rate(nats_url: str, seconds: float, concurrency: int) -> PlainRate:
    """JetStream publish-with-ack from nats-py (the services' client), `concurrency` in flight."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name="BENCHRAW", subjects=["benchraw.>"], max_msgs=200_000)
    payload = json.dumps({"petition_id": str(uuid.uuid4()), **PETITION}).encode()
    count = 0
    deadline = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal count
        i = 0
        while time.monotonic() < deadline:
            i += 1
            await js.publish("benchraw.submitted", payload, headers={"Nats-Msg-Id": f"{w}-{i}"})
            count += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await nc.close()
    return PlainRate("raw JetStream publish+ack", elapsed, count, count / elapsed)


def _start_reference(port: int, env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "reference_app:app",
            "--app-dir", str(ROOT / "bench"),
            "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def reference_rate(
    nats_url: str, database_url: str, args: argparse.Namespace, workdir: Path
) -> PlainRate:
    """The reference endpoint under the same wrk saturation as intake."""
    port = free_port()
    env = {**os.environ, "BENCH_REF_DATABASE_URL": database_url, "BENCH_REF_NATS_URL": nats_url}
    url = f"http://127.0.0.1:{port}"
    print(f"[reference] saturation (load average {load_average()})", flush=True)
    with (workdir / "reference.log").open("w") as log:
        proc = _start_reference(port, env, log)
        try:
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient() as client:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(url + "/readyz")).status_code == 200:
                            break
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"reference app did not start; see {workdir}")
                    await asyncio.sleep(0.2)
            target = url + "/api/v1/petitions"
            body = petition_body(PETITION)
            await asyncio.to_thread(
                run_wrk, target, body=body, workdir=workdir / "reference", tag="w",
                duration=2, connections=2, threads=1, rate=5,
            )  # fmt: skip
            wrk = await asyncio.to_thread(
                run_wrk, target, body=body, workdir=workdir / "reference", tag="s",
                duration=args.duration, connections=args.connections, threads=THREADS,
            )  # fmt: skip
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    print(f"  {wrk.ok} accepted ({wrk.rate:.1f}/s, {wrk.failed} failed)", flush=True)
    return PlainRate(
        "reference endpoint", wrk.seconds, wrk.ok, wrk.rate, wrk.latency_ms, f"{wrk.failed} failed"
    )


async def postgres_admin(url: str) -> Any | None:
    import asyncpg  # type: ignore[import-untyped]

    try:
        return await asyncio.wait_for(asyncpg.connect(url), 3)
    except Exception as exc:
        print(f"PostgreSQL not reachable at {url} ({type(exc).__name__}: {exc}); skipping it")
        return None


def database_url(admin_url: str, name: str) -> str:
    base = admin_url.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql://{base}/{name}"


async def run_backend(
    backend: str, args: argparse.Namespace, workdir: Path, admin: Any | None
) -> list[ModeResult]:
    """Saturation, then the fixed rates derived from it, each on a fresh stack (and, on
    PostgreSQL, fresh databases)."""
    results: list[ModeResult] = []

    async def one(mode: str, rate: float | None) -> ModeResult:
        env: dict[str, str] = {}
        created: list[str] = []
        try:
            if admin is not None:
                prefix = f"bench_{uuid.uuid4().hex[:8]}"
                for svc in SERVICES:
                    await admin.execute(f'CREATE DATABASE "{prefix}_{svc}"')
                    created.append(f"{prefix}_{svc}")
                    env[f"PETITIONS_{svc.upper()}_DATABASE_URL"] = database_url(
                        args.pg_url, f"{prefix}_{svc}"
                    )
            return await run_mode(backend, mode, rate, env, args, workdir)
        finally:
            for name in created:
                assert admin is not None
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    modes = set(args.modes)
    saturation: float | None = args.saturation_rate
    if "saturation" in modes:
        results.append(await one("saturation", None))
        saturation = results[-1].accepted_per_s
    for fraction in FRACTIONS:
        if str(round(fraction * 100)) not in modes:
            continue
        if not saturation:
            print(f"[{backend}] no saturation rate to take {fraction:.0%} of; skipping")
            continue
        results.append(await one(f"{fraction:.0%}", fraction * saturation))
    return results


async def main(args: argparse.Namespace) -> int:
    try:
        ensure_wrk()
    except WrkMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="petitions-bench-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    load_before = load_average()
    modes: list[ModeResult] = []
    reference: PlainRate | None = None
    admin = None if args.no_postgres else await postgres_admin(args.pg_url)
    ref_nats = EmbeddedNats(
        store_dir=workdir / "ref-nats", port=free_port(), log_file=workdir / "ref-nats.log"
    )
    ref_nats.start()
    try:
        if admin is not None:
            ref_db = f"bench_{uuid.uuid4().hex[:8]}_reference"
            await admin.execute(f'CREATE DATABASE "{ref_db}"')
            try:
                reference = await reference_rate(
                    ref_nats.url, database_url(args.pg_url, ref_db), args, workdir
                )
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{ref_db}" WITH (FORCE)')
        print(f"[raw JetStream] {args.raw_seconds:.0f}s publishing", flush=True)
        raw = await raw_publish_rate(ref_nats.url, args.raw_seconds, args.connections)
        if admin is not None:
            modes += await run_backend("postgres", args, workdir, admin)
        if not args.no_sqlite:
            modes += await run_backend("sqlite", args, workdir, None)
    finally:
        ref_nats.stop()
        if admin is not None:
            await admin.close()

    load_after = load_average()
    command = " ".join(["bench/run.py", *sys.argv[1:]])
    table = markdown(modes, reference, raw, args, load_before, load_after, command)
    verdicts = targets(modes, reference)
    print()
    print(table)
    print()
    for line in verdicts:
        print(line)
    results = {
        "command": command,
        "duration_s": args.duration,
        "connections": args.connections,
        "load_average": {"before": load_before, "after": load_after},
        "reference": asdict(reference) if reference else None,
        "raw_jetstream": asdict(raw),
        "modes": [
            {
                **{k: v for k, v in asdict(m).items() if not k.endswith("_ms") or k == "http_ms"},
                **{
                    f"{k}_ms": {p: percentile(getattr(m, f"{k}_ms"), p) for p in (50, 95, 99)}
                    for k in ("assigned", "member", "resident")
                },
            }
            for m in modes
        ],
        "targets": verdicts,
        "markdown": table,
    }
    out = _write_results(Path(args.out), results)
    print(f"\nresults: {out}; logs: {workdir}")
    return 0 if modes and all(m.accepted for m in modes) else 1


def _write_results(out: Path, results: dict[str, Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=60, help="seconds of load per mode (default 60)"
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument(
        "--modes",
        type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
        default=["saturation", "25", "50", "80"],
        help="which modes, comma-separated (default saturation,25,50,80)",
    )
    parser.add_argument(
        "--saturation-rate",
        type=float,
        default=None,
        help="the rate the fixed rates are fractions of, when saturation is not run",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=600,
        help="seconds at most to wait after the load for every petition to come through "
        "(default 600)",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=60,
        help="stop waiting after this many seconds without progress (default 60)",
    )
    parser.add_argument(
        "--raw-seconds", type=float, default=20, help="seconds of raw JetStream publishing"
    )
    parser.add_argument(
        "--out", default=str(ROOT / ".bench" / "results.json"), help="where the JSON results go"
    )
    parser.add_argument(
        "--workdir", help="where the stacks' data and logs go (default: a new temporary directory)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL admin URL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite runs")
    parser.add_argument(
        "--no-postgres", action="store_true", help="skip PostgreSQL and the reference"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy every service during each saturation run; raw stacks into DIR",
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so the `finally` blocks stop the stacks and drop the databases


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(asyncio.run(main(parse_args())))
