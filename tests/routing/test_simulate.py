"""`petitions ladder simulate`: past cases replayed against the ladder they ran under give what
happened; a slower ladder gives fewer escalations; the command prints the table."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from services.routing.simulate import format_report, simulate
from tests.routing.test_escalation import MONDAY, Clocked, routing  # noqa: F401 - fixture
from tests.routing.test_flow import HAMLET, open_case, submitted

ROOT = Path(__file__).parents[2]
SLOW = """\
ladder:
  - {holder: member, acknowledge: 10d, resolve: 30d}
  - {holder: leader, acknowledge: 10d, resolve: 30d}
  - {holder: parent, acknowledge: 10d, resolve: 30d}
"""
FAST_CALENDAR = """\
calendar:
  office_hours: ["00:00-23:59"]
"""


async def test_replaying_past_cases(routing: Clocked, tmp_path: Path) -> None:  # noqa: F811
    slow, fast = tmp_path / "slow.yaml", tmp_path / "calendar.yaml"
    slow.write_text(SLOW)
    fast.write_text(FAST_CALENDAR)
    climbed = (await open_case(routing, submitted()))["case_id"]
    quick = (await open_case(routing, submitted()))["case_id"]
    holder = (await routing.case(quick))["holder_member_id"]  # ids are usernames in the demo
    assert (await routing.act(holder, quick, "accept")).status_code == 200
    resolved = await routing.act(holder, quick, "resolve", {"explanation": "xong"})
    assert resolved.status_code == 200
    await routing.at((await routing.case(climbed))["ack_due_at"] + timedelta(minutes=1))
    assert (await routing.case(climbed))["rung"] == 1
    until = routing.clock.now()
    engine = routing.runtime.engine

    same = await simulate(engine, since=MONDAY.date(), until=until)
    assert same.cases == 2
    assert dict(same.did) == {(HAMLET, 0, 1): 1}
    assert same.would == same.did
    table = format_report(same)
    assert f"{HAMLET}" in table
    assert "0→1" in table

    slower = await simulate(engine, since=MONDAY.date(), until=until, ladder_file=slow)
    assert sum(slower.would.values()) == 0
    # Office hours round the clock make the same deadlines fall sooner: still one escalation
    # by the time the real one happened, and more had time gone on.
    faster = await simulate(engine, since=MONDAY.date(), until=until, calendar_file=fast)
    assert faster.would[(HAMLET, 0, 1)] == 1
    later = await simulate(
        engine, since=MONDAY.date(), until=until + timedelta(days=3), calendar_file=fast
    )
    assert later.would[(HAMLET, 1, 2)] == 1


async def test_the_command_prints_the_table_and_names_bad_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ladder:\n  - {holder: member, acknowledge: 1h, resolve: never}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETITIONS_")}
    env["PETITIONS_ROUTING_DATABASE_URL"] = f"sqlite:///{tmp_path / 'routing.db'}"
    env["PYTHONPATH"] = str(ROOT)

    async def run(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from services.cli import main; main()",
            "ladder",
            "simulate",
            *args,
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    from services.routing.app import MIGRATIONS_DIR
    from shared.migrate import upgrade_async

    await upgrade_async(
        MIGRATIONS_DIR,
        env["PETITIONS_ROUTING_DATABASE_URL"].replace("sqlite:", "sqlite+aiosqlite:"),
    )
    code, out = await run("--since", "2026-01-01")
    assert code == 0, out
    assert "0 hồ sơ / cases" in out
    code, out = await run("--since", "2026-01-01", "--ladder", str(bad))
    assert code == 1
    assert f"{bad}:2:" in out
