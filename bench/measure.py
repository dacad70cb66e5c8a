"""One scenario measured on every server side by side (taking turns in each repeat), summarized."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis

from app.core.settings import RecoSettings
from app.reco import stored
from app.reco.cache import PREFIX
from app.reco.service import ListKey
from bench import driver, ingest, scenarios, seed, servers


@dataclass
class Servers:
    """The base URLs of one pass: bookbridge, the raw limit, and optionally the peer and the
    same bookbridge tracing at 0.1."""

    app: str
    raw: str
    peer: str | None = None
    traced: str | None = None


def measure(
    args: argparse.Namespace, scenario: scenarios.Scenario, on: Servers
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The scenario against each server once per repeat; the first server changes every repeat,
    so no server always runs on a machine warmed (or tired) by another. The traced server (if
    any) is compared with the untraced one after each repeat's turns (`interleave`)."""
    if scenario.fresh:
        return measure_fresh(args, scenario, on.app), None
    concurrency = scenario.concurrency or args.concurrency
    requests = scenario.requests()
    bodies, each = [b for b, _ in requests], [h for _, h in requests]
    # SQL/req is counted in the warm-up; the measured run sends `x-bench-quiet` (every server
    # gets it, only bench.served reads it), so bookbridge counts nothing while it is timed
    quiet = {"x-bench-quiet": "1"} if args.warmup else {}

    def pair(
        bodies: list[bytes], path: str, each: list[dict[str, str]] | None = None
    ) -> tuple[Path, Path]:
        """(warm-up script, measured script)."""
        return (
            driver.write_script(bodies, path, None, each),
            driver.write_script(bodies, path, quiet, each),
        )

    scripts = {on.app: pair(bodies, "/graphql", each)}
    if on.traced is not None:
        scripts[on.traced] = scripts[on.app]
    if scenario.raw_path is not None:
        scripts[on.raw] = pair(bodies, scenario.raw_path)
    if on.peer is not None and scenario.peer_bodies is not None:
        scripts[on.peer] = pair(scenario.peer_bodies, "/graphql")
    targets = list(scripts)

    def timed(base: str) -> driver.Run:
        warm, measured = scripts[base]
        if not args.warmup:
            return driver.wrk(base, measured, concurrency, args.duration)
        counted = driver.wrk(base, warm, concurrency, args.warmup)
        run = driver.wrk(base, measured, concurrency, args.duration)
        return dataclasses.replace(run, sql_per_request=counted.sql_per_request)

    for base in targets:
        servers.reset_peak(base)
    # the traced server is not one of the turns: it is compared with the untraced one in short
    # slices taking turns (`interleave`) after the turns of each repeat
    plain = [base for base in targets if base != on.traced]
    runs: list[dict[str, driver.Run]] = []
    slices: list[Slice] = []
    for i in range(args.repeat):
        runs.append({base: timed(base) for base in turns(plain, i)})
        if on.traced is not None:
            slices += interleave(args, on.app, on.traced, scripts[on.app], concurrency, i)
    for script in {s for two in scripts.values() for s in two}:
        script.unlink(missing_ok=True)
    memory = {base: servers.memory_mb(base) for base in targets}

    def side(base: str | None) -> tuple[list[driver.Run], tuple[float, float] | None]:
        if base is None or base not in scripts:
            return [], None
        if base == on.traced:
            return per_repeat(slices, "b"), memory[base]
        return [r[base] for r in runs], memory[base]

    raw, peer = side(on.raw), side(on.peer)
    row = summarize(scenario.name, concurrency, side(on.app), raw, peer)
    row["_detail"]["note"] = scenario.note
    if on.traced is None:
        return row, None
    traced_row = summarize(scenario.name, concurrency, side(on.traced), raw, peer)
    vs_untraced_slices(traced_row, slices)
    return row, traced_row


def turns(targets: list[str], repeat: int) -> list[str]:
    """The servers' order in repeat `repeat`: the first changes every repeat, so no server
    always runs on a machine warmed (or tired) by another."""
    turn = repeat % len(targets)
    return targets[turn:] + targets[:turn]


Side = tuple[list[driver.Run], tuple[float, float] | None]

SLICE_S = 1.0  # seconds of one slice of the traced comparison (wrk's -d is whole seconds)


@dataclass
class Slice:
    """One short wrk run of the traced comparison: server "a" (untraced) or "b" (traced), the
    ABBA block it belongs to, what it measured."""

    server: str
    repeat: int
    block: int
    run: driver.Run


def interleave(
    args: argparse.Namespace,
    a: str,
    b: str,
    scripts: tuple[Path, Path],
    concurrency: int,
    repeat: int,
) -> list[Slice]:
    """Servers `a` and `b` in slices of SLICE_S taking turns ABBA BAAB ... (the next repeat
    starts the other way round), `ceil(seconds / 2)` blocks a repeat, so each server is
    measured about `--tracing-seconds` (default `--duration`) seconds a repeat. Two servers
    measured in one long run each land in different seconds of a machine whose speed moves
    10-30% from one stretch of seconds to the next (docs/performance.md, "The tracing
    comparison"); in short slices, ABBA, a linear drift cancels within each block and the rest
    is averaged over many slices. `b` has a warm-up of its own first (which counts its SQL);
    `a` has just had its turn in this repeat."""
    warm, measured = scripts
    counted = driver.wrk(b, warm, concurrency, args.warmup) if args.warmup else None
    seconds = getattr(args, "tracing_seconds", None) or args.duration
    blocks = max(1, math.ceil(seconds / (2 * SLICE_S)))
    out: list[Slice] = []
    for k in range(blocks):
        block = repeat * blocks + k
        for who in "abba" if (repeat + k) % 2 == 0 else "baab":
            run = driver.wrk(a if who == "a" else b, measured, concurrency, SLICE_S)
            if who == "b" and counted is not None:
                run = dataclasses.replace(run, sql_per_request=counted.sql_per_request)
            out.append(Slice(who, repeat, block, run))
    return out


def pooled(runs: list[driver.Run]) -> driver.Run:
    """Several runs as one: requests and seconds summed, CPU per request over all requests,
    latency percentiles the median of the runs'."""
    requests = sum(r.requests for r in runs)
    seconds = sum(r.seconds for r in runs)
    cpu = [r.server_cpu_us * r.requests for r in runs if r.server_cpu_us is not None]
    sql = [r.sql_per_request for r in runs if r.sql_per_request is not None]
    return driver.Run(
        requests=requests,
        seconds=seconds,
        throughput_rps=requests / seconds if seconds else 0.0,
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        bad=sum(r.bad for r in runs),
        sql_per_request=sql[0] if sql else None,
        client_cpu=max(r.client_cpu for r in runs),
        server_cpu_us=sum(cpu) / requests if len(cpu) == len(runs) and requests else None,
        gc=None,
        below_min_sql=sum(r.below_min_sql for r in runs),
    )


def per_repeat(slices: list[Slice], server: str) -> list[driver.Run]:
    """One server's slices pooled per repeat."""
    by_repeat: dict[int, list[driver.Run]] = {}
    for s in slices:
        if s.server == server:
            by_repeat.setdefault(s.repeat, []).append(s.run)
    return [pooled(runs) for _, runs in sorted(by_repeat.items())]


def vs_untraced_slices(traced_row: dict[str, Any], slices: list[Slice]) -> None:
    """The traced comparison on the traced row: `vs_untraced` = traced / untraced throughput,
    requests over seconds summed over every slice of each server; in `_detail`: the ratio of
    each ABBA block (`vs_untraced`), of each adjacent pair of slices (`vs_untraced_pairs`), a
    90% bootstrap interval of the ratio over those pairs (`vs_untraced_interval`), and the same
    ratio of the servers' CPU per request (`cpu_per_request_vs_untraced`, and per block)."""
    detail = traced_row["_detail"]
    blocks = sorted({s.block for s in slices})
    in_block = [[s for s in slices if s.block == k] for k in blocks]
    pairs = [(q[i], q[i + 1]) for q in in_block for i in range(0, len(q) - 1, 2)]
    traced_row["vs_untraced"] = round(ratio_of_sums(slices), 3)
    detail["vs_untraced"] = [round(ratio_of_sums(q), 3) for q in in_block]
    detail["vs_untraced_pairs"] = [round(ratio_of_sums(list(p)), 3) for p in pairs]
    detail["vs_untraced_interval"] = bootstrap(pairs)
    # every slice in order: server, requests/s, server CPU us per request
    detail["vs_untraced_slices"] = [
        [
            s.server,
            round(s.run.throughput_rps, 1),
            s.run.server_cpu_us and round(s.run.server_cpu_us, 1),
        ]
        for s in slices
    ]
    detail["slice_s"] = SLICE_S
    cpu = cpu_ratio(slices)
    detail["cpu_per_request_vs_untraced"] = None if cpu is None else round(cpu, 3)
    per_block = [cpu_ratio(q) for q in in_block]
    detail["cpu_per_request_vs_untraced_runs"] = [round(x, 3) for x in per_block if x is not None]


def rate(slices: list[Slice], server: str) -> float:
    mine = [s.run for s in slices if s.server == server]
    seconds = sum(r.seconds for r in mine)
    return sum(r.requests for r in mine) / seconds if seconds else 0.0


def ratio_of_sums(slices: list[Slice]) -> float:
    """b's throughput over a's, each its requests over its seconds summed over the slices."""
    a = rate(slices, "a")
    return rate(slices, "b") / a if a else 0.0


def cpu_ratio(slices: list[Slice]) -> float | None:
    """b's server CPU per request over a's, each summed over the slices (None: not known)."""
    per: dict[str, float] = {}
    for server in ("a", "b"):
        mine = [s.run for s in slices if s.server == server]
        if not mine or any(r.server_cpu_us is None for r in mine):
            return None
        cpu = sum((r.server_cpu_us or 0.0) * r.requests for r in mine)
        per[server] = cpu / max(1, sum(r.requests for r in mine))
    return per["b"] / per["a"] if per["a"] else None


def bootstrap(
    pairs: list[tuple[Slice, Slice]], level: float = 0.9, draws: int = 2000
) -> list[float] | None:
    """A `level` interval of the ratio of sums, resampling the adjacent pairs of slices (a
    seeded generator: the same slices give the same interval)."""
    if len(pairs) < 2:
        return None
    rng = random.Random(0)
    got = sorted(
        ratio_of_sums([s for pair in rng.choices(pairs, k=len(pairs)) for s in pair])
        for _ in range(draws)
    )
    tail = (1 - level) / 2
    return [round(got[int(tail * draws)], 3), round(got[int((1 - tail) * draws) - 1], 3)]


def measure_fresh(
    args: argparse.Namespace, scenario: scenarios.Scenario, app: str
) -> dict[str, Any]:
    """Cold requests: every wrk run (warm-ups too) sends a slice of bodies of its own, so no
    request repeats one sent before to this server (bookbridge only: no raw or peer twin).
    The last body is left out: `check_same_json` sent it. A scenario to `prepare` has its
    slice's Redis entries removed and its stored lists deleted or stored before its run
    (`prepare`), and a response that ran fewer than `min_sql` statements (a list served from
    a cache it should not have found) stops the bench."""
    requests = scenario.requests()[:-1]
    ids = (scenario.study_set_ids or [])[:-1]
    concurrency = scenario.concurrency or args.concurrency
    per_repeat = 2 if args.warmup else 1
    size = len(requests) // (args.repeat * per_repeat)
    slices = [range(i * size, (i + 1) * size) for i in range(args.repeat * per_repeat)]
    servers.reset_peak(app)
    runs: list[driver.Run] = []
    cycled = False
    for i in range(args.repeat):
        mine = slices[i * per_repeat : (i + 1) * per_repeat]
        scripts = [
            driver.write_script(
                [requests[j][0] for j in part],
                "/graphql",
                None,
                [requests[j][1] for j in part],
                scenario.min_sql,
            )
            for part in mine
        ]
        if scenario.prepare:
            prepare(args, [ids[j] for part in mine for j in part], scenario.prepare)
        if args.warmup:
            driver.wrk(app, scripts[0], concurrency, args.warmup)
        runs.append(driver.wrk(app, scripts[-1], concurrency, args.duration))
        cycled |= runs[-1].requests > size  # a body sent twice: not all cold
        for script in scripts:
            script.unlink(missing_ok=True)
        if runs[-1].below_min_sql:
            raise SystemExit(
                f"bench: {scenario.name}: {runs[-1].below_min_sql} of {runs[-1].requests}"
                f" responses ran fewer than {scenario.min_sql} SQL statements: served from a"
                " cache"
            )
    row = summarize(
        scenario.name, concurrency, (runs, servers.memory_mb(app)), ([], None), ([], None)
    )
    row["_detail"]["note"] = scenario.note + (
        f"; {size} study sets per run" + (" (some asked twice: too few)" if cycled else "")
    )
    return row


# A study set's list in no store: its stored row deleted (as a set nobody asked for has none)
_UNSTORE = "DELETE FROM study_set_lists WHERE study_set_id = ANY($1::text[])"


def prepare(args: argparse.Namespace, study_set_ids: list[str], how: str) -> None:
    """No Redis entry (any strategy or `first`) for these study sets, and their stored lists
    deleted ("unstored": the server's next request for each computes its list) or stored
    ("stored", as the worker's fill stores them: served from the store). (The in-process cache
    is the server's own: `fresh` slices never repeat a request to it.)"""

    async def lists() -> None:
        # a few connections: a computation's inputs are three statements sent at once
        async with asyncpg.create_pool(seed.plain_url(args.database_url), min_size=3) as pool:
            if how == "unstored":
                await pool.execute(_UNSTORE, study_set_ids)
            else:
                await stored.store(pool.fetch, RecoSettings(), study_set_ids)

    asyncio.run(lists())
    if args.redis_url:
        wanted = set(study_set_ids)
        client = redis.Redis.from_url(args.redis_url)
        try:
            keys = [
                k
                for k in client.scan_iter(match=f"{PREFIX}ss:*", count=1000)
                if ListKey.parse(k.decode().removeprefix(PREFIX)).study_set_id in wanted
            ]
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def summarize(name: str, concurrency: int, app: Side, raw: Side, peer: Side) -> dict[str, Any]:
    """Medians over the repeats; ratios are the medians of the per-repeat ratios."""
    med = statistics.median
    mine, (raws, _), (peers, _) = app[0], raw, peer
    sql = [m.sql_per_request for m in mine if m.sql_per_request is not None]

    def ratio(others: list[driver.Run]) -> float | None:
        if not others:
            return None
        return round(
            med(m.throughput_rps / o.throughput_rps for m, o in zip(mine, others, strict=True)), 3
        )

    def rps(runs: list[driver.Run]) -> float | None:
        return round(med(r.throughput_rps for r in runs), 1) if runs else None

    def ms(runs: list[driver.Run], key: str) -> float | None:
        return round(med(getattr(r, key) for r in runs), 2) if runs else None

    peak, after = app[1] or (None, None)
    return {
        "name": name,
        "concurrency": concurrency,
        "throughput_rps": rps(mine),
        "p50_ms": ms(mine, "p50_ms"),
        "p99_ms": ms(mine, "p99_ms"),
        "sql_per_request": round(med(sql), 2) if sql else None,
        "cpu_us_per_request": median_of([m.server_cpu_us for m in mine], 0),
        "peak_rss_mb": peak,
        "rss_after_mb": after,
        "raw_throughput_rps": rps(raws),
        "ratio": ratio(raws),
        "postgraphile_throughput_rps": rps(peers),
        "ratio_postgraphile": ratio(peers),
        "_detail": {
            "unit": "requests/s",
            "runs": [round(m.throughput_rps, 1) for m in mine],
            "p99_runs": [round(m.p99_ms, 2) for m in mine],  # the first repeat may be cold
            "raw_runs": [round(r.throughput_rps, 1) for r in raws],
            "postgraphile_runs": [round(r.throughput_rps, 1) for r in peers],
            "raw_p50_ms": ms(raws, "p50_ms"),
            "raw_p99_ms": ms(raws, "p99_ms"),
            "postgraphile_p50_ms": ms(peers, "p50_ms"),
            "postgraphile_p99_ms": ms(peers, "p99_ms"),
            "errors": sum(r.bad for r in mine + raws + peers),
            "requests": sum(m.requests for m in mine),
            "client_cpu": round(max(r.client_cpu for r in mine + raws + peers), 2),
            "server_cpu_us": median_of([m.server_cpu_us for m in mine]),
            "raw_server_cpu_us": median_of([r.server_cpu_us for r in raws]),
            "postgraphile_server_cpu_us": median_of([r.server_cpu_us for r in peers]),
            "raw_peak_rss_mb": raw[1] and raw[1][0],
            "postgraphile_peak_rss_mb": peer[1] and peer[1][0],
            "gc_pauses": [m.gc for m in mine],
        },
    }


def median_of(values: list[float | None], digits: int = 3) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), digits) if known else None


def measure_ingest(
    args: argparse.Namespace, name: str, on: Servers, url: str, token: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Batches through bookbridge (and the traced server) and through asyncpg, per repeat."""
    entity = "books" if name == "upsert_books" else "engagement_events"
    refs = asyncio.run(ingest.references(url))
    mine: list[ingest.IngestRun] = []
    traced_runs: list[ingest.IngestRun] = []
    raws: list[ingest.IngestRun] = []
    cpu: list[float | None] = []
    n, secs = args.ingest_concurrency, args.duration

    def through(base: str, prefix: str) -> ingest.IngestRun:
        rows = ingest.Rows(refs, prefix)
        return asyncio.run(ingest.through_graphql(base, token, entity, rows, n, secs, 80))

    servers.reset_peak(on.app)
    tags = [f"{os.getpid()}-{i}" for i in range(args.repeat)]
    for i, tag in enumerate(tags):
        if on.traced is not None and i % 2 == 1:
            traced_runs.append(through(on.traced, f"t{tag}"))
        before = servers.cpu_seconds(on.app)
        mine.append(through(on.app, f"g{tag}"))
        after = servers.cpu_seconds(on.app)
        batches = len(mine[-1].batch_ms)
        if before is not None and after is not None and batches:
            cpu.append((after - before) * 1e6 / batches)
        if on.traced is not None and i % 2 == 0:
            traced_runs.append(through(on.traced, f"t{tag}"))
        raws.append(
            asyncio.run(
                ingest.through_asyncpg(url, entity, ingest.Rows(refs, f"r{tag}"), n, secs, 400)
            )
        )
    memory = servers.memory_mb(on.app)
    asyncio.run(ingest.cleanup(url, [f"{k}{t}" for t in tags for k in "grt"]))
    row = ingest_row(name, n, mine, raws)
    row["cpu_us_per_request"] = median_of(cpu, 0)
    row["peak_rss_mb"], row["rss_after_mb"] = memory or (None, None)
    if on.traced is None:
        return row, None
    traced_row = ingest_row(name, n, traced_runs, raws)
    vs_untraced(traced_row, [m.records_per_s for m in mine], [t.records_per_s for t in traced_runs])
    return row, traced_row


def vs_untraced(traced_row: dict[str, Any], untraced: list[float], traced: list[float]) -> None:
    """Record traced / untraced throughput, per repeat and their median, on the traced row."""
    overhead = [t / u for u, t in zip(untraced, traced, strict=True)]
    traced_row["_detail"]["vs_untraced"] = [round(x, 3) for x in overhead]
    traced_row["vs_untraced"] = round(statistics.median(overhead), 3)


def ingest_row(
    name: str, n: int, mine: list[ingest.IngestRun], raws: list[ingest.IngestRun]
) -> dict[str, Any]:
    a, b = ingest.summary(mine), ingest.summary(raws)
    ratios = [m.records_per_s / r.records_per_s for m, r in zip(mine, raws, strict=True)]
    return {
        "name": name,
        "concurrency": n,
        "throughput_rps": round(a["records_per_s"], 1),
        "p50_ms": round(a["p50_ms"], 2),
        "p99_ms": round(a["p99_ms"], 2),
        "sql_per_request": a["sql_per_request"],
        "cpu_us_per_request": None,
        "peak_rss_mb": None,
        "rss_after_mb": None,
        "raw_throughput_rps": round(b["records_per_s"], 1),
        "ratio": round(statistics.median(ratios), 3),
        "postgraphile_throughput_rps": None,
        "ratio_postgraphile": None,
        "_detail": {
            "unit": f"records/s (batches of {ingest.BATCH}, gzip over HTTP; p50/p99 and CPU "
            "per batch)",
            "runs": [round(m.records_per_s, 1) for m in mine],
            "raw_runs": [round(r.records_per_s, 1) for r in raws],
            "raw_p50_ms": round(b["p50_ms"], 2),
            "raw_p99_ms": round(b["p99_ms"], 2),
            "errors": int(a["bad"]),
            "requests": sum(len(m.batch_ms) for m in mine),
            "client_cpu": None,
            "note": "raw = one INSERT .. ON CONFLICT (events: + the three aggregates) per batch",
        },
    }
