"""The bench's Markdown table (to paste into docs/performance.md) and the issue's targets."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import ModeResult, PlainRate

MB = 1024 * 1024
PROCESSES = ("intake", "routing", "notify", "nats-server")
# Targets of issue 9 on PostgreSQL; SQLite is held to 0.8 of them (rates × 0.8, the latency
# bound ÷ 0.8; memory is the same).
SQLITE_FACTOR = 0.8


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(values: list[float]) -> str:
    parts = [_pct(values, p) for p in (50, 95, 99)]
    if parts[0] is None:
        return "n/a"
    return " / ".join(_human_ms(v) for v in parts if v is not None)


def _human_ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f}"


def _http(ms: dict[str, float]) -> str:
    if not ms:
        return "n/a"
    return f"{_human_ms(ms['50'])} / {_human_ms(ms['99'])}"


def markdown(
    modes: list[ModeResult],
    reference: PlainRate | None,
    raw: PlainRate,
    args: argparse.Namespace,
    load_before: str,
    load_after: str,
    command: str,
) -> str:
    lines = [
        f"`{command}`: {args.duration:g} s per mode, wrk -t2 -c{args.connections}; "
        f"load average {load_before} before, {load_after} after.",
        "",
        "| backend | mode | offered/s | accepted/s | HTTP p50 / p99 ms | end to end /s "
        "| through | →assigned p50 / p95 / p99 ms | →member emailed p50 / p95 / p99 ms "
        "| →resident emailed p50 / p95 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if reference is not None:
        lines.append(
            f"| reference | saturation | — | {reference.accepted_per_s:.0f} "
            f"| {_http(reference.http_ms)} | — | — | — | — | — |"
        )
    lines.append(
        f"| raw JetStream | publish+ack, {args.connections} in flight | — "
        f"| {raw.accepted_per_s:.0f} | — | — | — | — | — | — |"
    )
    for m in modes:
        offered = f"{m.offered_per_s:.0f}" if m.offered_per_s else "max"
        through = f"{m.complete}/{m.stored}"
        if m.last_complete_after_load_s is not None and m.last_complete_after_load_s > 1:
            through += f", last {m.last_complete_after_load_s:.0f} s after the load"
        lines.append(
            f"| {m.backend} | {m.mode} | {offered} | {m.accepted_per_s:.0f} | {_http(m.http_ms)} "
            f"| {m.end_to_end_per_s:.1f} | {through} | {_ms(m.assigned_ms)} "
            f"| {_ms(m.member_ms)} | {_ms(m.resident_ms)} |"
        )
    lines += [
        "",
        "| backend | mode | CPU ms per petition: intake / routing / notify / nats-server "
        "| RSS idle MB: intake / routing / notify / nats = total | RSS peak under load MB "
        "(total) | wrk CPU |",
        "|---|---|---|---|---|---|",
    ]
    for m in modes:
        cpu = m.cpu_ms_per_petition
        idle = " / ".join(f"{m.rss_idle.get(p, 0) / MB:.0f}" for p in PROCESSES)
        peak = " / ".join(f"{m.rss_peak.get(p, 0) / MB:.0f}" for p in PROCESSES)
        wrk_share = m.wrk_cpu_s / m.seconds if m.seconds else 0.0
        lines.append(
            f"| {m.backend} | {m.mode} | {' / '.join(f'{cpu.get(p, 0):.1f}' for p in PROCESSES)} "
            f"| {idle} = {m.rss_idle_total / MB:.0f} | {peak} ({m.rss_peak_total / MB:.0f}) "
            f"| {wrk_share:.0%} of a core |"
        )
    notes = [f"- {m.backend} {m.mode}: {m.note}" for m in modes if m.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _line(ok: bool | None, text: str) -> str:
    return f"{'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {text}"


def targets(modes: list[ModeResult], reference: PlainRate | None) -> list[str]:
    """One PASS/FAIL line per target of issue 9 and backend."""
    out: list[str] = []
    ref = reference.accepted_per_s if reference else None
    for backend in ("postgres", "sqlite"):
        mine = {m.mode: m for m in modes if m.backend == backend}
        if not mine:
            continue
        f = 1.0 if backend == "postgres" else SQLITE_FACTOR
        sat = mine.get("saturation")
        if sat is not None:
            if ref:
                ratio = sat.accepted_per_s / ref
                out.append(
                    _line(
                        ratio >= 0.5 * f,
                        f"{backend}: intake accepted/s {sat.accepted_per_s:.0f} = {ratio:.2f}× "
                        f"the reference (target ≥ {0.5 * f:.2f}×)",
                    )
                )
                ratio = sat.end_to_end_per_s / ref
                out.append(
                    _line(
                        ratio >= 0.25 * f,
                        f"{backend}: sustained end to end {sat.end_to_end_per_s:.1f}/s = "
                        f"{ratio:.3f}× the reference (target ≥ {0.25 * f:.2f}×)",
                    )
                )
            else:
                out.append(_line(None, f"{backend}: ratios to the reference (no PostgreSQL)"))
            out.append(
                _line(
                    sat.end_to_end_per_s >= 250 * f,
                    f"{backend}: sustained end to end {sat.end_to_end_per_s:.1f}/s "
                    f"(target ≥ {250 * f:.0f}/s)",
                )
            )
        half = mine.get("50%")
        if half is not None:
            # A petition that never came through counts as slower than any that did.
            waits = half.member_ms + [math.inf] * (half.stored - len(half.member_ms))
            p99 = _pct(waits, 99)
            shown = (
                "never (not all came through)"
                if p99 is None or math.isinf(p99)
                else f"{p99 / 1000:.2f} s"
            )
            out.append(
                _line(
                    p99 is not None and p99 <= 2000 / f,
                    f"{backend}: at 50 % of saturation, submit→member-emailed p99 {shown} "
                    f"(target ≤ {2 / f:.1f} s)",
                )
            )
            out.append(
                _line(
                    half.rss_peak_total <= 600 * MB,
                    f"{backend}: stack RSS under the 50 % load {half.rss_peak_total / MB:.0f} MB "
                    "(target ≤ 600 MB)",
                )
            )
        idle = max((m.rss_idle_total for m in mine.values()), default=0)
        out.append(
            _line(
                idle <= 400 * MB, f"{backend}: stack RSS idle {idle / MB:.0f} MB (target ≤ 400 MB)"
            )
        )
    return out
