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
    "raw_throughput_rps",
    "ratio",
)


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
    return (
        f"{name:<40} c={row['concurrency']:<3} {row['throughput_rps']:>8.0f} rps  "
        f"p50 {row['p50_ms']:>7.2f} ms  p99 {row['p99_ms']:>7.2f} ms  sql/req {row['sql_per_request']}  "
        f"raw {raw} rps (p50 {d['raw_p50_ms']} p99 {d['raw_p99_ms']})  ratio {ratio}  "
        f"runs {[round(x) for x in d['runs']]} raw {[round(x) for x in d['raw_runs']]}  "
        f"errors {d['errors']}  wrk cpu {d['client_cpu']}"
        + f"  server cpu {d.get('server_cpu_us')} us/req"
        + gc_summary(d.get("gc_pauses"))
        + (
            f"  vs untraced {row['vs_untraced']} {d['vs_untraced']}"
            f" (cpu/req x{d.get('cpu_per_request_vs_untraced')})"
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
) -> dict[str, Any]:
    scale = "large" if args["large"] else "demo"
    result: dict[str, Any] = {
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenarios": [{k: row[k] for k in FIELDS} for row in rows],
        "variants": [
            {"variant": v["variant"], **{k: v.get(k) for k in (*FIELDS, "vs_untraced")}}
            for v in variants
        ],
        "missing": missing,
        "run": {
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "scale": scale,
            "workers": args["workers"],
            "duration_s": args["duration"],
            "repeat": args["repeat"],
            "redis": bool(args["redis_url"]),
            "detail": {row["name"]: row["_detail"] for row in rows},
            "variant_detail": {f"{v['name']} [{v['variant']}]": v["_detail"] for v in variants},
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "RESULTS.md").write_text(
        f"# Benchmark results\n\n{result['machine']}; {result['date']}; scale {scale}, "
        f"{args['workers']} uvicorn workers, {args['repeat']} x {args['duration']} s runs, "
        f"medians (`{result['run']['command']}`).\n\n"
        + markdown_table(result["scenarios"])
        + "\n\nReads: requests/s, wrk with 32 connections; ingestion (upsert_books, record_events):"
        " records/s in gzip batches of 1,000, p50/p99 per batch. ratio = bookbridge / raw limit,"
        " measured side by side in each repeat (median of the per-repeat ratios). vs_untraced ="
        " tracing_0.1 / the default server, the two alternating in each repeat.\n"
        + (
            "\n## Variants\n\n" + markdown_table(result["variants"], variant=True) + "\n"
            if variants
            else ""
        )
        + "".join(f"\n- {name}: not measured: {why}\n" for name, why in missing.items())
    )
    return result


def markdown_table(rows: list[dict[str, Any]], variant: bool = False) -> str:
    keys = ("variant", *FIELDS, "vs_untraced") if variant else FIELDS
    names = {"name": "scenario", "concurrency": "clients", "throughput_rps": "throughput"}
    names |= {"p50_ms": "p50 ms", "p99_ms": "p99 ms", "sql_per_request": "SQL/req"}
    names |= {"raw_throughput_rps": "raw throughput", "ratio": "ratio"}
    names["vs_untraced"] = "vs untraced"
    head = "| " + " | ".join(names.get(k, k) for k in keys) + " |\n"
    head += "|" + "|".join("---" if k in ("name", "variant") else "---:" for k in keys) + "|\n"

    def cell(v: Any) -> str:
        return "-" if v is None else str(v)

    return head + "\n".join("| " + " | ".join(cell(r.get(k)) for k in keys) + " |" for r in rows)
