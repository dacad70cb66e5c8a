"""Drives a server with wrk (C, epoll): one Lua script per scenario cycles through its bodies."""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import servers

LUA = r"""
local bodies = {%(bodies)s}
local path = "%(path)s"
local extra = {%(headers)s}
local each = {%(each)s}
local min_sql = %(min_sql)d
local reqs = {}
local i = 0
n, sql, bad, sqlseen, low = 0, 0, 0, 0, 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local headers = {["Content-Type"] = "application/json", ["Accept-Encoding"] = "identity"}
  for k, v in pairs(extra) do headers[k] = v end
  for k, b in ipairs(bodies) do
    local h = {}
    for kk, vv in pairs(headers) do h[kk] = vv end
    for kk, vv in pairs(each[k] or {}) do h[kk] = vv end
    reqs[k] = wrk.format("POST", path, h, b)
  end
  i = tid * 7
end

function request()
  i = i + 1
  return reqs[(i %% #reqs) + 1]
end

function response(status, headers, body)
  n = n + 1
  if status ~= 200 or string.find(body, '"errors":', 1, true) then bad = bad + 1 end
  local s = headers["x-bench-sql"]
  if s then sql = sql + tonumber(s); sqlseen = sqlseen + 1 end
  if min_sql > 0 and (not s or tonumber(s) < min_sql) then low = low + 1 end
end

function done(summary, latency, requests)
  local tn, ts, tb, tseen, tl = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    tn = tn + t:get("n"); ts = ts + t:get("sql"); tb = tb + t:get("bad"); tseen = tseen + t:get("sqlseen")
    tl = tl + t:get("low")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "bad": %%d, ' ..
    '"sql": %%d, "sql_seen": %%d, "below_min_sql": %%d, "socket_errors": %%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    tb, ts, tseen, tl, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Run:
    requests: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p99_ms: float
    bad: int
    sql_per_request: float | None
    client_cpu: float  # wrk's CPU seconds per wall second (1.0 = one core busy)
    # the server's CPU time per request (all its processes): steadier than throughput on a
    # shared machine, since time the server spends waiting for a core is not in it
    server_cpu_us: float | None = None
    # the server's collector pauses during the run, per generation (bench.served servers only)
    gc: dict[str, dict[str, float]] | None = None
    # responses that ran fewer SQL statements than the script's `min_sql` (or did not say)
    below_min_sql: int = 0


def _lua_string(data: bytes) -> str:
    text = data.decode()
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def _lua_table(headers: dict[str, str]) -> str:
    return ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())


def write_script(
    bodies: list[bytes],
    path: str,
    headers: dict[str, str] | None = None,
    body_headers: list[dict[str, str]] | None = None,
    min_sql: int = 0,
) -> Path:
    """A wrk script cycling through `bodies`; `body_headers` adds headers to each body. With
    `min_sql`, the run counts the responses whose `x-bench-sql` is below it (`below_min_sql`)."""
    script = LUA % {
        "min_sql": min_sql,
        "bodies": ",\n".join(_lua_string(b) for b in bodies),
        "path": path,
        "headers": _lua_table(headers or {}),
        "each": ",\n".join("{" + _lua_table(h) + "}" for h in body_headers or []),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-", delete=False) as fh:
        fh.write(script)
    return Path(fh.name)


@functools.cache
def _polls() -> httpx.Client:
    """One client for the polls between runs: making one costs tens of ms (its TLS context),
    which each of a run's ten polls paid; no keep-alive, so each poll is a new connection."""
    return httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def drain(base_url: str, timeout: float = 120) -> None:
    """Wait until no worker still runs requests of a finished run (bench.served servers)."""
    deadline = time.monotonic() + timeout
    idle = 0
    while idle < 8 and time.monotonic() < deadline:
        try:  # a new connection each time, so the polls reach every worker
            busy = int(_polls().get(base_url + "/_bench/inflight").text or 0)
        except (httpx.HTTPError, ValueError):
            busy = 0  # the raw app has no such route: its requests are short
        idle = idle + 1 if busy == 0 else 0
        if busy:
            time.sleep(0.2)


def gc_stats(base_url: str) -> dict[str, dict[str, float]] | None:
    """The server's collector pauses since the last call (None: not a bench.served server)."""
    try:
        response = _polls().get(base_url + "/_bench/gc")
        data: dict[str, dict[str, float]] = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return data if response.status_code == 200 and "gen0" in data else None


def ensure_wrk() -> None:
    """Install wrk with apt-get when it is missing and we may (root on Debian), else stop."""
    if shutil.which("wrk") is not None:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit("bench: wrk not found (Debian: apt-get install wrk)")
    print("bench: wrk not found; installing it: apt-get install wrk", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        subprocess.run(cmd, env=env, check=False, capture_output=True, timeout=600)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk not found and apt-get install wrk failed")


def wrk(base_url: str, script: Path, concurrency: int, seconds: float, threads: int = 1) -> Run:
    ensure_wrk()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = servers.cpu_seconds(base_url)
    gc_stats(base_url)  # reset
    start = time.monotonic()
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall = time.monotonic() - start
    server_after = servers.cpu_seconds(base_url)
    pauses = gc_stats(base_url)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    drain(base_url)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    data = json.loads(line[len("BENCH ") :])
    secs = data["duration_us"] / 1e6
    return Run(
        requests=data["requests"],
        seconds=secs,
        throughput_rps=data["requests"] / secs,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        bad=data["bad"] + data["socket_errors"],
        sql_per_request=(data["sql"] / data["sql_seen"]) if data["sql_seen"] else None,
        client_cpu=cpu / wall,
        gc=pauses,
        below_min_sql=data["below_min_sql"],
        server_cpu_us=(
            (server_after - server_before) * 1e6 / max(1, data["requests"])
            if server_before is not None and server_after is not None
            else None
        ),
    )
