"""`make bench`: how fast intake accepts petitions, and how soon they reach a member.

For SQLite and for PostgreSQL, starts the real stack (`services.stack.Stack`) on free ports in a
temporary directory, submits N petitions over HTTP with concurrency C, and measures

- accepted petitions/s (2xx answers over the submission wall time),
- submit→assigned latency (until `petitions.assigned.v1` for the petition is seen on NATS),
- submit→member-emailed latency (until notify writes the first `.eml` for the petition).

Beside them, measured in the same run: a reference FastAPI endpoint that inserts one row with
asyncpg and publishes it with a JetStream ack (`bench/reference_app.py`), and the raw JetStream
publish-with-ack rate. Prints a table and the ratios. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.stack import SERVICES, UNTHROTTLED_ENV, Stack, file_sink  # noqa: E402
from shared.embedded_nats import EmbeddedNats, free_port  # noqa: E402

PETITION = {
    "unit_id": "my-hoa-hung-my-khanh-2",
    "category_id": "roads_lighting",
    "title": "Đèn đường hỏng / Street light out",
    "description": "Đèn đường trước nhà văn hóa ấp bị hỏng ba hôm nay. (bench)",
    "consent": True,
}
# UUIDs, references such as PA-80TC-E1JD, and short ids such as 6BDE6F3C.
TOKEN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\b[A-Z]{2}-[A-Z0-9]{4}-[A-Z0-9]{4}\b"
    r"|\b[0-9A-F]{8}\b"
)
DEFAULT_PG_URL = os.environ.get(
    "PETITIONS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Run:
    name: str
    n: int
    accepted: int = 0
    seconds: float = 0.0
    statuses: Counter[int | str] = field(default_factory=Counter)
    assigned_ms: list[float] = field(default_factory=list)
    emailed_ms: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None without data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


async def submit_all(
    url: str, n: int, concurrency: int, run: Run
) -> dict[str, tuple[float, str | None]]:
    """POST n petitions; returns petition_id → (submit wall time, reference)."""
    sent: dict[str, tuple[float, str | None]] = {}
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                body = {**PETITION, "title": f"{PETITION['title']} #{i}"}
                started = time.time()
                try:
                    response = await client.post("/api/v1/petitions", json=body)
                except httpx.HTTPError as exc:
                    run.statuses[type(exc).__name__] += 1
                    continue
                run.statuses[response.status_code] += 1
                if response.is_success:
                    run.accepted += 1
                    data = _json(response)
                    pid = data.get("petition_id") or data.get("id")
                    if pid:
                        sent[str(pid)] = (started, data.get("reference"))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - t0
    return sent


def _json(response: httpx.Response) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        data = response.json()
        if isinstance(data, dict):
            return data
    return {}


async def watch_mail(
    mail_dir: Path,
    sent: dict[str, tuple[float, str | None]],
    seen: dict[str, float],
    stop: asyncio.Event,
) -> None:
    """Record, per petition, the write time of the first .eml that names it (by `X-Petition-Id`,
    else by its id or reference anywhere in the message)."""
    read: set[Path] = set()
    by_reference = {ref: pid for pid, (_, ref) in sent.items() if ref}
    by_reference.update({pid[:8]: pid for pid in sent})
    while not stop.is_set():
        for raw, written in await asyncio.to_thread(_new_mail, mail_dir, read):
            for pid in _petitions_named(raw, sent, by_reference):
                seen.setdefault(pid, written)
        await asyncio.sleep(0.1)


def _petitions_named(
    raw: bytes, sent: dict[str, tuple[float, str | None]], by_reference: dict[str, str]
) -> list[str]:
    """Petitions a message is about: its `X-Petition-Id`, else ids or references in its
    decoded subject and text."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    header = message.get("X-Petition-Id")
    if header:
        return [str(header)] if str(header) in sent else []
    parts = [str(message.get("Subject", ""))]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            with contextlib.suppress(LookupError, ValueError):
                parts.append(part.get_content())
    text = "\n".join(parts)
    tokens = set(TOKEN.findall(text))
    found = [pid for pid in tokens if pid in sent]
    found += [by_reference[t] for t in tokens if t in by_reference]
    # notify may label a message with the petition id's first 8 hex digits instead.
    found += [by_reference[t.lower()] for t in tokens if t.lower() in by_reference]
    if not found:  # references in a shape the pattern does not know
        found = [pid for ref, pid in by_reference.items() if ref in text]
    return found


def _new_mail(mail_dir: Path, read: set[Path]) -> list[tuple[bytes, float]]:
    """Messages not read before, with the time each was written."""
    found = []
    for path in sorted(mail_dir.rglob("*.eml")) if mail_dir.exists() else []:
        if path in read:
            continue
        with contextlib.suppress(OSError):
            found.append((path.read_bytes(), path.stat().st_mtime))
            read.add(path)
    return found


async def wait_until(done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        await asyncio.sleep(0.1)
    return bool(done())


async def bench_stack(
    name: str, env: dict[str, str], args: argparse.Namespace, workdir: Path
) -> Run:
    run = Run(name=name, n=args.n)
    var = workdir / name
    stack = Stack(
        var_dir=var,
        ports={svc: free_port() for svc in SERVICES},
        nats_port=free_port(),
        # Measure delivery, not the batching window that holds members' emails by design.
        # Measure the stack, not the public rate limit (500 petitions from one address).
        env={"PETITIONS_NOTIFY_BATCH_WINDOW_MINUTES": "0", **UNTHROTTLED_ENV, **env},
        output=file_sink(workdir / f"{name}.log"),
    )
    print(f"[{name}] starting the stack (logs: {workdir / f'{name}.log'})", flush=True)
    stack.start()
    try:
        await asyncio.to_thread(stack.wait_ready, 180)
        assigned_at: dict[str, float] = {}

        async def on_assigned(msg: Any) -> None:
            with contextlib.suppress(ValueError, AttributeError):
                pid = json.loads(msg.data).get("petition_id")
                if pid:
                    assigned_at.setdefault(str(pid), time.time())

        nc = await nats.connect(stack.nats_url, **stack.nats_connect_options())
        # JetStream publishes reach core subscribers too: no consumer to clean up afterwards.
        await nc.subscribe("petitions.assigned.v1", cb=on_assigned)
        try:
            warm = Run(name="warm-up", n=min(10, args.n))
            await submit_all(stack.url("intake"), warm.n, min(args.concurrency, warm.n), warm)
            sent = await submit_all(stack.url("intake"), args.n, args.concurrency, run)
            print(
                f"[{name}] {run.accepted}/{args.n} accepted in {run.seconds:.1f}s; "
                f"waiting for assignments and emails (≤ {args.settle}s)",
                flush=True,
            )
            emailed_at: dict[str, float] = {}
            stop = asyncio.Event()
            watcher = asyncio.create_task(watch_mail(var / "mail", sent, emailed_at, stop))
            await wait_until(
                lambda: all(p in assigned_at for p in sent) and all(p in emailed_at for p in sent),
                args.settle,
            )
            stop.set()
            await watcher
        finally:
            await nc.close()
        run.assigned_ms = [
            (assigned_at[p] - t) * 1000 for p, (t, _) in sent.items() if p in assigned_at
        ]
        run.emailed_ms = [
            (emailed_at[p] - t) * 1000 for p, (t, _) in sent.items() if p in emailed_at
        ]
        missing_a = len(sent) - len(run.assigned_ms)
        missing_e = len(sent) - len(run.emailed_ms)
        if missing_a or missing_e:
            run.note = f"not seen in time: {missing_a} assigned, {missing_e} emailed"
    finally:
        await asyncio.to_thread(stack.stop)
    return run


async def raw_publish_rate(nats_url: str, n: int, concurrency: int) -> Run:
    run = Run(name="raw JetStream publish+ack", n=n)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(name="BENCHRAW", subjects=["benchraw.>"])
    counter = iter(range(n))
    payload = json.dumps({"petition_id": str(uuid.uuid4()), **PETITION}).encode()

    async def worker() -> None:
        for i in counter:
            await js.publish("benchraw.submitted", payload, headers={"Nats-Msg-Id": f"raw-{i}"})
            run.accepted += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - t0
    await nc.close()
    return run


def _start_reference(port: int, env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "reference_app:app",
            "--app-dir", str(ROOT / "bench"),
            "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


async def reference_rate(
    nats_url: str, database_url: str, args: argparse.Namespace, workdir: Path
) -> Run:
    run = Run(name="reference FastAPI+asyncpg+ack", n=args.n)
    port = free_port()
    env = {**os.environ, "BENCH_REF_DATABASE_URL": database_url, "BENCH_REF_NATS_URL": nats_url}
    with (workdir / "reference.log").open("w") as log:
        proc = _start_reference(port, env, log)
        try:
            url = f"http://127.0.0.1:{port}"

            async def ready() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    async with httpx.AsyncClient() as client:
                        return (await client.get(url + "/readyz")).status_code == 200
                return False

            deadline = time.monotonic() + 30
            while not await ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"reference app did not start; see {workdir / 'reference.log'}"
                    )
                await asyncio.sleep(0.1)
            await submit_all(url, min(10, args.n), min(10, args.concurrency), Run("warm-up", 10))
            await submit_all(url, args.n, args.concurrency, run)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return run


async def postgres_admin(url: str) -> Any | None:
    import asyncpg

    try:
        return await asyncio.wait_for(asyncpg.connect(url), 3)
    except Exception as exc:
        print(f"PostgreSQL not reachable at {url} ({type(exc).__name__}: {exc}); skipping it")
        return None


def database_url(admin_url: str, name: str) -> str:
    base = admin_url.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql://{base}/{name}"


def fmt_ms(values: list[float]) -> str:
    parts = [percentile(values, p) for p in (50, 95, 99)]
    if parts[0] is None:
        return "n/a"
    return " / ".join(f"{v:.0f}" for v in parts if v is not None)


def report(runs: list[Run], reference: Run | None, raw: Run | None) -> None:
    print()
    header = f"{'run':<32} {'ok/N':>9} {'per s':>8}  {'→assigned p50/95/99 ms':>24}  {'→emailed p50/95/99 ms':>24}"
    print(header)
    print("-" * len(header))
    for r in [*runs, *(x for x in (reference, raw) if x)]:
        latency = r in runs
        print(
            f"{r.name:<32} {f'{r.accepted}/{r.n}':>9} {r.rate:>8.1f}  "
            f"{fmt_ms(r.assigned_ms) if latency else '':>24}  "
            f"{fmt_ms(r.emailed_ms) if latency else '':>24}"
        )
    for r in runs:
        other = {k: v for k, v in r.statuses.items() if k not in (200, 201, 202)}
        if other or r.note:
            print(
                f"  {r.name}: {r.note} {f'other answers: {dict(other)}' if other else ''}".rstrip()
            )
    print()
    if reference and reference.rate:
        for r in runs:
            print(f"{r.name} intake / reference: {r.rate / reference.rate:.2f}")
        if raw and raw.rate:
            print(f"reference / raw JetStream:  {reference.rate / raw.rate:.3f}")
    for r in runs:
        if raw and raw.rate:
            print(f"{r.name} intake / raw JetStream: {r.rate / raw.rate:.3f}")


async def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="petitions-bench-"))
    runs: list[Run] = []
    reference: Run | None = None
    if not args.no_sqlite:
        runs.append(await bench_stack("sqlite", {}, args, workdir))

    admin = None if args.no_postgres else await postgres_admin(args.pg_url)
    created: list[str] = []
    ref_nats = EmbeddedNats(
        store_dir=workdir / "ref-nats", port=free_port(), log_file=workdir / "ref-nats.log"
    )
    ref_nats.start()
    try:
        if admin is not None:
            prefix = f"bench_{uuid.uuid4().hex[:8]}"
            for suffix in (*SERVICES, "reference"):
                await admin.execute(f'CREATE DATABASE "{prefix}_{suffix}"')
                created.append(f"{prefix}_{suffix}")
            env = {
                f"PETITIONS_{svc.upper()}_DATABASE_URL": database_url(
                    args.pg_url, f"{prefix}_{svc}"
                )
                for svc in SERVICES
            }
            runs.append(await bench_stack("postgres", env, args, workdir))
            reference = await reference_rate(
                ref_nats.url, database_url(args.pg_url, f"{prefix}_reference"), args, workdir
            )
        raw = await raw_publish_rate(ref_nats.url, args.n, args.concurrency)
    finally:
        ref_nats.stop()
        if admin is not None:
            for name in created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

    report(runs, reference, raw)
    results = {
        "n": args.n,
        "concurrency": args.concurrency,
        "runs": [
            {
                "name": r.name,
                "accepted": r.accepted,
                "per_second": r.rate,
                "assigned_ms": {p: percentile(r.assigned_ms, p) for p in (50, 95, 99)},
                "emailed_ms": {p: percentile(r.emailed_ms, p) for p in (50, 95, 99)},
                "note": r.note,
            }
            for r in runs
        ],
        "reference_per_second": reference.rate if reference else None,
        "raw_jetstream_per_second": raw.rate,
    }
    out = ROOT / ".bench" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}; logs: {workdir}")
    return 0 if all(r.accepted for r in runs) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="petitions per run (default 500)")
    parser.add_argument(
        "--concurrency", type=int, default=20, help="requests in flight (default 20)"
    )
    parser.add_argument(
        "--settle", type=float, default=120, help="seconds to wait for assignments and emails"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL admin URL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument(
        "--no-postgres", action="store_true", help="skip PostgreSQL and the reference"
    )
    return parser.parse_args()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so the `finally` blocks stop the stacks and drop the databases


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(asyncio.run(main(parse_args())))
