"""Writes bench/results.json (the issue's shape) and bench/RESULTS.md (the same as a table)."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIELDS = (
    "name",
    "concurrency",
    "throughput_rps",
    "p50_ms",
    "p99_ms",
    "sql_per_request",
    "cpu_us_per_request",
    "peak_rss_mb",
    "rss_after_mb",
    "raw_throughput_rps",
    "ratio",
    "postgraphile_throughput_rps",
    "ratio_postgraphile",
)
INGEST = ("upsert_books", "record_events")
SQL_COUNTING = (
    "statements the bookbridge worker ran for each request (x-bench-sql from bench.served): "
    "SQLAlchemy's before_cursor_execute, plus asyncpg's query logger for statements run on the "
    "driver connection itself; transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) not counted"
)


COMPILED = ("catalog_page", "deep", "book_by_id")
# the traced comparison's spread, copied from a variant's detail into its results.json entry
VS_UNTRACED = ("vs_untraced_interval", "cpu_per_request_vs_untraced")


def targets(
    rows: list[dict[str, Any]], memory: dict[str, Any], variants: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Issues 15 and 16: targets against this run: what was asked, what was measured, met or not."""
    by = {r["name"]: r for r in rows}
    out: list[dict[str, Any]] = []

    def check(target: str, value: float | None, met: bool | None) -> None:
        out.append({"target": target, "value": value, "met": met})

    for name in [n for n in COMPILED if n in by]:
        row = by[name]
        for key, floor, peer in (
            ("ratio", 0.5, "raw"),
            ("ratio_postgraphile", 1.5, "PostGraphile"),
        ):
            value = row.get(key)
            check(f"{name} >= {floor}x {peer}", value, None if value is None else value >= floor)
        sql = row.get("sql_per_request")
        check(f"{name} SQL/req == 1", sql, None if sql is None else sql == 1)
    if "student_home" in by:
        p99 = by["student_home"]["p99_ms"]
        check("student_home p99 < 100 ms", p99, p99 < 100)
    # issue 16: a study set's list at one client, cold (computed), stored and cached
    latency = (
        ("recommendation_cold", 50),
        ("recommendation_stored", 50),
        ("recommendation_hot", 10),
    )
    for name, limit in latency:
        if name in by:
            p99 = by[name]["p99_ms"]
            check(f"{name} p99 < {limit} ms (1 client)", p99, p99 < limit)
    for label, m in (memory or {}).items():
        if m:
            check(f"worker RSS after the {label} pass < 300 MB", m["rss_mb"], m["rss_mb"] < 300)
    for v in variants or []:
        kept = v.get("vs_untraced")
        interval = v.get("vs_untraced_interval") or v.get("_detail", {}).get("vs_untraced_interval")
        if kept is None:
            continue
        if v.get("variant") == "untraced_aa":  # the A/A check: two untraced servers
            within = None if interval is None else interval[0] <= 1.0 <= interval[1]
            check(f"{v['name']} A/A: 1.0 within the 90% interval", kept, within)
        else:
            check(f"{v['name']} traced at 0.1 keeps >= 0.9 of its throughput", kept, kept >= 0.9)
            out[-1]["floor"] = 0.9
        out[-1]["interval"] = interval
    return out


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def line(row: dict[str, Any]) -> str:
    d = row["_detail"]
    name = row["name"] + (f" [{row['variant']}]" if row.get("variant") else "")
    ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
    raw = f"{row['raw_throughput_rps']:.0f}" if row["raw_throughput_rps"] is not None else "-"
    peer = row.get("postgraphile_throughput_rps")
    return (
        f"{name:<40} c={row['concurrency']:<3} {row['throughput_rps']:>8.0f} rps  "
        f"p50 {row['p50_ms']:>7.2f} ms  p99 {row['p99_ms']:>7.2f} ms  sql/req {row['sql_per_request']}  "
        f"raw {raw} rps (p50 {d['raw_p50_ms']} p99 {d['raw_p99_ms']})  ratio {ratio}  "
        + (
            f"postgraphile {peer} rps (p99 {d.get('postgraphile_p99_ms')}) "
            f"ratio {row.get('ratio_postgraphile')} {d.get('postgraphile_runs')}  "
            if peer is not None
            else ""
        )
        + f"runs {[round(x) for x in d['runs']]} p99 {d.get('p99_runs')} "
        + f"raw {[round(x) for x in d['raw_runs']]}  "
        f"errors {d['errors']}  wrk cpu {d['client_cpu']}"
        f"  rss peak {row.get('peak_rss_mb')} MB after {row.get('rss_after_mb')} MB"
        + f"  server cpu {d.get('server_cpu_us')} us/req"
        + gc_summary(d.get("gc_pauses"))
        + (
            f"  vs untraced {row['vs_untraced']} (90%: {d.get('vs_untraced_interval')})"
            f" {d['vs_untraced']} (cpu/req x{d.get('cpu_per_request_vs_untraced')}"
            f" {d.get('cpu_per_request_vs_untraced_runs', [])})"
            if "vs_untraced" in row
            else ""
        )
    )


def gc_summary(runs: list[dict[str, dict[str, float]] | None] | None) -> str:
    """'  gc <collections> (max <longest pause> ms)' per generation, over the runs."""
    known = [r for r in runs or [] if r]
    if not known:
        return ""
    parts = []
    for gen in ("gen0", "gen1", "gen2"):
        count = sum(int(r[gen]["count"]) for r in known)
        longest = max(r[gen]["max_ms"] for r in known)
        parts.append(f"{gen} {count} (max {longest} ms)")
    return "  gc " + ", ".join(parts)


def write(
    out: Path,
    rows: list[dict[str, Any]],
    variants: list[dict[str, Any]],
    missing: dict[str, str],
    args: dict[str, Any],
    memory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    scale = "large" if args["large"] else "demo"
    result: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenarios": [{k: row.get(k) for k in FIELDS} for row in rows],
        "variants": [
            {
                "variant": v["variant"],
                **{k: v.get(k) for k in (*FIELDS, "vs_untraced")},
                **{k: v["_detail"].get(k) for k in VS_UNTRACED if "_detail" in v},
            }
            for v in variants
        ],
        "missing": missing,
        "targets": targets(rows, memory or {}, variants),
        "run": {
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "scale": scale,
            "workers": args["workers"],
            "duration_s": args["duration"],
            "repeat": args["repeat"],
            "redis": bool(args["redis_url"]),
            "worker_memory_after_pass": memory or {},
            "sql_per_request": SQL_COUNTING,
            "detail": {row["name"]: row["_detail"] for row in rows},
            "variant_detail": {f"{v['name']} [{v['variant']}]": v["_detail"] for v in variants},
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "RESULTS.md").write_text(markdown(result, args))
    return result


def markdown(result: dict[str, Any], args: dict[str, Any]) -> str:
    """RESULTS.md: uncached reads first (the headline), then cached reads, ingestion, variants."""
    run = result["run"]
    rows = result["scenarios"]
    ingest = [r for r in rows if r["name"] in INGEST]
    cached = [r for r in rows if r["name"].endswith("_cached") and r["name"] not in INGEST]
    # recommendations_cached is the recommender's own cache, not the response cache
    cached = [r for r in cached if not r["name"].startswith("recommendations_")]
    uncached = [r for r in rows if r not in ingest and r not in cached]
    memory = run["worker_memory_after_pass"]
    parts = [
        f"# Benchmark results\n\n{result['machine']}; {result['date']}; scale {run['scale']}, "
        f"{args['workers']} uvicorn workers, {args['repeat']} x {args['duration']} s runs, "
        f"medians (`{run['command']}`).\n",
        "## Reads, response cache off (the headline)\n\n" + markdown_table(uncached) + "\n",
    ]
    if cached:
        parts.append("## Reads, response cache on\n\n" + markdown_table(cached) + "\n")
    if ingest:
        parts.append("## Ingestion\n\n" + markdown_table(ingest) + "\n")
    parts.append(
        "Reads: requests/s, wrk with 32 connections, rate limits off. ratio = bookbridge / the raw"
        " limit (bench/raw_app.py), ratio PostGraphile = bookbridge / PostGraphile v4.14.1 over the"
        " same database; all servers take turns in each repeat (median of the per-repeat ratios)."
        f" SQL/req: {SQL_COUNTING}. CPU µs/req: user + system time of the bookbridge server's"
        " processes (/proc/<pid>/stat) over the run, per request. RSS: the bookbridge worker's"
        " peak (VmHWM, reset before each scenario) and resident set after the scenario, MB."
        " Ingestion: records/s in gzip batches of 1,000, p50/p99 and CPU per batch."
        " vs untraced (reads) = tracing_0.1 / the default server: the two take turns in 1 s"
        " slices (ABBA BAAB, after each repeat's turns), each server's requests over its seconds"
        " summed over all slices; 90% = a bootstrap interval over the adjacent pairs of slices;"
        " CPU x = the same ratio of the servers' CPU per request. untraced_aa (--tracing-aa):"
        " the same with both servers untraced, which must come out 1.00 within its interval."
        " Ingestion's vs untraced: back to back runs, median of the per-repeat ratios.\n"
    )
    if memory:
        parts.append(
            "Worker memory after each pass: "
            + "; ".join(
                f"{name}: RSS {m['rss_mb']} MB (peak {m['peak_rss_mb']} MB)"
                for name, m in memory.items()
                if m
            )
            + ".\n"
        )
    if result["targets"]:
        parts.append("## Issues 15 and 16: targets\n\n" + targets_table(result["targets"]) + "\n")
    if result["variants"]:
        parts.append("## Variants\n\n" + markdown_table(result["variants"], variant=True) + "\n")
    parts += [f"- {name}: not measured: {why}\n" for name, why in result["missing"].items()]
    return "\n".join(parts)


def targets_table(checks: list[dict[str, Any]]) -> str:
    marks = {True: "met", False: "**missed**", None: "not measured"}
    head = "| target | this run | |\n|---|---:|---|\n"

    def value(c: dict[str, Any]) -> str:
        shown = "-" if c["value"] is None else str(c["value"])
        interval = c.get("interval")
        return shown + (f" (90%: {interval[0]}-{interval[1]})" if interval else "")

    def mark(c: dict[str, Any]) -> str:
        interval, floor = c.get("interval"), c.get("floor")
        if interval is None or floor is None or c["met"] is None:
            return marks[c["met"]]
        if interval[0] >= floor or interval[1] < floor:  # the whole interval on one side
            return marks[c["met"]] + " (90% interval on the same side)"
        return marks[c["met"]] + f" (not shown: the 90% interval spans {floor})"

    return head + "\n".join(f"| {c['target']} | {value(c)} | {mark(c)} |" for c in checks)


def markdown_table(rows: list[dict[str, Any]], variant: bool = False) -> str:
    keys = ("variant", *FIELDS, "vs_untraced", *VS_UNTRACED) if variant else FIELDS
    names = {"name": "scenario", "concurrency": "clients", "throughput_rps": "throughput"}
    names |= {"p50_ms": "p50 ms", "p99_ms": "p99 ms", "sql_per_request": "SQL/req"}
    names |= {"raw_throughput_rps": "raw throughput", "ratio": "ratio"}
    names |= {"cpu_us_per_request": "CPU µs/req", "peak_rss_mb": "peak RSS MB"}
    names |= {"rss_after_mb": "RSS after MB", "postgraphile_throughput_rps": "PostGraphile"}
    names["ratio_postgraphile"] = "ratio PostGraphile"
    names["vs_untraced"] = "vs untraced"
    names |= {"vs_untraced_interval": "vs untraced 90%", "cpu_per_request_vs_untraced": "CPU x"}
    head = "| " + " | ".join(names.get(k, k) for k in keys) + " |\n"
    head += "|" + "|".join("---" if k in ("name", "variant") else "---:" for k in keys) + "|\n"

    def cell(v: Any) -> str:
        if isinstance(v, list):
            return "-".join(str(x) for x in v)
        return "-" if v is None else str(v)

    return head + "\n".join("| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows)
