"""`python -m faults [--quick] [--backend sqlite|postgres|both] [--only KEY ...] [--keep]`

Runs each scenario on a fresh stack under load, audits it, prints the table and writes
`.faults/results.json`; exits 1 when any scenario lost, doubled or left stuck anything."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from faults.audit import Findings, audit, settle, stored_petitions
from faults.infra import PrivatePostgres, Tmpfs
from faults.load import Load
from faults.scenarios import Cluster, Context, Scenario, Timing, scenarios
from faults.world import BACKENDS, World
from services.stack import SERVICES

RESULTS = Path(".faults/results.json")


def _log(text: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def run_one(
    scenario: Scenario, backend: str, timing: Timing, postgres: PrivatePostgres | None, keep: bool
) -> Findings:
    findings = Findings()
    # A killed worker's claimed notifications come back after the lease: 120 s in production,
    # 30 s in the quick run so CI does not wait two minutes for each of them.
    env = {**({"PETITIONS_NOTIFY_DELIVERY_LEASE_S": "30"} if timing.quick else {}), **scenario.env}
    cluster: Cluster | None = None
    mounts: list[Tmpfs] = []
    world = World(
        scenario.key, backend, postgres=postgres, keep=keep, env=env, channels=scenario.channels
    )
    try:
        if scenario.cluster:
            cluster = Cluster(world.root / "cluster", world.credentials)
            cluster.start()
            world.nats_url_override = cluster.url
            world.cluster_nodes = cluster.nodes
        if scenario.key == "4-disk":
            mounts.append(Tmpfs(world.var / "nats", "64m"))
            if backend == "sqlite":
                db = Tmpfs(world.root / "db", "32m")
                mounts.append(db)
                for svc in SERVICES:
                    world.extra_env[f"PETITIONS_{svc.upper()}_DATABASE_URL"] = (
                        f"sqlite+aiosqlite:///{db.path / f'{svc}.db'}"
                    )
            world.tmpfs = mounts
        stack = await world.start()
        load = Load(stack)
        load.start()
        ctx = Context(world=world, timing=timing, findings=findings)
        await asyncio.sleep(timing.warmup)
        _log(f"{scenario.key} {backend}: fault")
        await scenario.fault(ctx)
        fault_end = time.monotonic()
        await asyncio.sleep(timing.tail)
        stats = await load.stop()
        petitions = {s.petition_id for s in stats.submitted} | ctx.extra_petitions
        unseen = await stored_petitions(world) - petitions
        if unseen:
            findings.note(
                f"{len(unseen)} petitions stored whose 201 the load never saw: audited too"
            )
            petitions |= unseen
        _log(f"{scenario.key} {backend}: {len(stats.submitted)} submitted, settling")
        findings.recover_s, detail = await settle(
            world, petitions, since=fault_end, timeout=timing.settle
        )
        if findings.recover_s is None:
            findings.note(f"did not settle within {timing.settle:.0f} s: {detail}")
        # The audit's own requests wait longer: a loaded machine is not a finding.
        load2 = Load(stack, timeout=60.0)
        await audit(world, load2.staff, petitions, findings)
        await load2.http.aclose()
        await _check_expectations(world, ctx, findings)
        if stats.abandoned:
            findings.note(f"{stats.abandoned} submissions never stored (gave up retrying)")
        findings.note(
            f"refusals {dict(stats.refusals)}; accepted {stats.accepted}, resolved {stats.resolved}"
        )
        if any(stack.exited().values()):
            findings.note(f"exited: {stack.exited()}")
    except Exception as exc:
        findings.stuck += 1
        findings.note(f"scenario failed: {type(exc).__name__}: {exc}")
    finally:
        await world.close()
        if cluster is not None:
            cluster.stop()
        for mount in mounts:
            mount.unmount()
        if mounts and not keep:
            # The directory could not be removed while the tmpfs was mounted in it.
            shutil.rmtree(world.root, ignore_errors=True)
        if keep:
            findings.note(f"kept {world.root}")
    return findings


async def _check_expectations(world: World, ctx: Context, findings: Findings) -> None:
    from sqlalchemy import select

    from services.routing.models import cases

    for petition_id, ok, what in ctx.expectations:
        async with world.engine("routing").connect() as conn:
            status = await conn.scalar(
                select(cases.c.status).where(cases.c.petition_id == petition_id)
            )
        if not ok(status):
            findings.lost += 1
            findings.note(f"expected {what}; case is {status}")


def table(rows: list[dict[str, object]]) -> str:
    head = (
        "scenario",
        "backend",
        "petitions",
        "lost",
        "doubled",
        "stuck",
        "in doubt",
        "dead-lettered",
        "recover s",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        rec = r["recover_s"]
        cells = (
            r["title"],
            r["backend"],
            r["petitions"],
            r["lost"],
            r["doubled"],
            r["stuck"],
            r.get("in_doubt", 0),
            r["dead_lettered"],
            "—" if rec is None else f"{rec:.1f}",
        )
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _write_results(path: Path, quick: bool, wall: float, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"quick": quick, "wall_s": round(wall), "rows": rows}, indent=2, default=str)
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("FAULTS_QUICK") == "1",
        help="shortened outages for CI (also FAULTS_QUICK=1)",
    )
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument(
        "--only", nargs="*", default=None, help="scenario keys, e.g. 1-kill 3-db-10s"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep each scenario's directory and logs"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    timing = Timing(quick=args.quick)
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    chosen = [s for s in scenarios(timing) if args.only is None or s.key in args.only]
    rows: list[dict[str, object]] = []
    started = time.monotonic()
    for backend in backends:
        postgres = None
        if backend == "postgres":
            postgres = PrivatePostgres()
            await asyncio.to_thread(postgres.init)
        try:
            for scenario in chosen:
                if backend not in scenario.backends:
                    continue
                reason = scenario.precondition()
                if reason:
                    _log(f"{scenario.key} {backend}: skipped ({reason})")
                    rows.append(
                        {
                            "key": scenario.key,
                            "title": scenario.title,
                            "backend": backend,
                            "skipped": reason,
                            **asdict(Findings(notes=[f"skipped: {reason}"])),
                        }
                    )
                    continue
                _log(f"{scenario.key} {backend}: start")
                t0 = time.monotonic()
                findings = await run_one(scenario, backend, timing, postgres, args.keep)
                rows.append(
                    {
                        "key": scenario.key,
                        "title": scenario.title,
                        "backend": backend,
                        "wall_s": round(time.monotonic() - t0, 1),
                        **asdict(findings),
                    }
                )
                _log(f"{scenario.key} {backend}: {asdict(findings)}")
        finally:
            if postgres is not None:
                await asyncio.to_thread(postgres.destroy)
    wall = time.monotonic() - started
    print(table(rows))
    for r in rows:
        print(f"- {r['title']} ({r['backend']}): " + "; ".join(str(n) for n in r["notes"]))  # type: ignore[attr-defined]
    print(f"wall time {wall:.0f} s ({'quick' if args.quick else 'full'})")
    _write_results(args.results, args.quick, wall, rows)
    bad = [r for r in rows if r["lost"] or r["doubled"] or r["stuck"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
