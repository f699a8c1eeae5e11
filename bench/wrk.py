"""Driving HTTP load with `wrk` (a C load generator, so the client is not what is measured).

`petition.lua` does the per-request work: a unique tag in each petition's title, the time each
request was sent, and the offered rate. This module installs wrk when it can, runs it, and
reads back what the script wrote.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "petition.lua"
TAG_MARKER = "@TAG@"


class WrkMissing(RuntimeError):
    """wrk is not installed and this process cannot install it."""


def ensure_wrk() -> str:
    """The path of `wrk`; installs Debian's package when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it: apt-get install -y wrk", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(
            ["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:  # the package lists may be missing in a fresh container
            subprocess.run(["apt-get", "update"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkMissing(
        "Cần wrk để đo tải / wrk is needed to generate the load: "
        "sudo apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS), "
        "or build it from source; then run `make bench` again."
    )


@dataclass
class WrkResult:
    """What one wrk run reports, plus when each tagged request was sent."""

    seconds: float
    requests: int
    failed: int
    latency_ms: dict[str, float]
    cpu_seconds: float
    sent: dict[str, float] = field(default_factory=dict)
    offered_rate: float | None = None

    @property
    def ok(self) -> int:
        return self.requests - self.failed

    @property
    def rate(self) -> float:
        """Accepted (2xx) answers per second of the run."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def sent_rate(self) -> float:
        """Requests sent per second, those still unanswered when wrk stopped included."""
        return len(self.sent) / self.seconds if self.seconds else 0.0


def petition_body(petition: dict[str, Any]) -> str:
    """The petition as JSON with `TAG_MARKER` at the end of its title."""
    tagged = {**petition, "title": f"{petition['title']} #{TAG_MARKER}"}
    return json.dumps(tagged, ensure_ascii=False)


def run_wrk(
    url: str,
    *,
    body: str,
    workdir: Path,
    tag: str,
    duration: float,
    connections: int = 64,
    threads: int = 2,
    rate: float | None = None,
    timeout_s: float = 30.0,
) -> WrkResult:
    """`wrk -t<threads> -c<connections> -d<duration>s` POSTing `body` to `url`; at `rate`
    requests/s when given, else as fast as the answers come back (saturation)."""
    binary = ensure_wrk()
    workdir.mkdir(parents=True, exist_ok=True)
    body_file = workdir / f"{tag}-body.json"
    body_file.write_text(body, encoding="utf-8")
    sent_file = workdir / f"{tag}-sent.tsv"
    summary_file = workdir / f"{tag}-summary.json"
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_TAG": tag,
        "BENCH_SENT_FILE": str(sent_file),
        "BENCH_SUMMARY_FILE": str(summary_file),
        "BENCH_THREADS": str(threads),
        "BENCH_RATE": f"{rate:.3f}" if rate else "",
    }
    command = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(SCRIPT),
        url,
    ]
    # wrk is this process's only child waited for in between: the difference is its CPU time.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with (workdir / f"{tag}-wrk.txt").open("w") as out:
        subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(summary_file.read_text())
    failed = sum(
        int(summary[k])
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    sent: dict[str, float] = {}
    for line in sent_file.read_text().splitlines():
        name, _, at = line.partition("\t")
        if at:
            sent[name] = float(at)
    return WrkResult(
        seconds=int(summary["duration_us"]) / 1e6,
        requests=int(summary["requests"]),
        failed=min(failed, int(summary["requests"])),
        latency_ms={k: float(v) / 1000 for k, v in summary["latency_us"].items()},
        cpu_seconds=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        sent=sent,
        offered_rate=rate,
    )
