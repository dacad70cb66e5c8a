"""Starts uvicorn subprocesses with the settings `bookbridge serve` uses, and waits until ready."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

_PIDS: dict[str, int] = {}  # base URL -> the server's process (its workers are children)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's supervisor and its workers; npx and node)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += _children(current)
    return found


def _workers(pid: int) -> list[int]:
    """The processes that serve requests: the leaves of the tree (the process itself when alone)."""
    tree = _tree(pid)
    leaves = [p for p in tree if not _children(p)]
    return leaves or [pid]


def _children(pid: int) -> list[int]:
    try:  # an exited process has no children
        return [
            int(c)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
    except (OSError, ValueError):
        return []


def cpu_seconds(base_url: str) -> float | None:
    """CPU seconds (user + system) used so far by the server at `base_url` and its workers."""
    pid = _PIDS.get(base_url)
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return total


def status_kb(pid: int, key: str) -> int | None:
    """A `kB` figure of /proc/<pid>/status (VmRSS: resident now, VmHWM: the peak)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def memory_mb(base_url: str) -> tuple[float, float] | None:
    """(peak RSS, RSS now) in MB of the server's largest worker; None when it is not ours."""
    pid = _PIDS.get(base_url)
    if pid is None:
        return None
    peaks = [status_kb(p, "VmHWM") or 0 for p in _workers(pid)]
    now = [status_kb(p, "VmRSS") or 0 for p in _workers(pid)]
    return round(max(peaks) / 1024, 1), round(max(now) / 1024, 1)


def reset_peak(base_url: str) -> None:
    """Restart the workers' peak RSS (VmHWM) from their RSS now (Linux: clear_refs 5)."""
    pid = _PIDS.get(base_url)
    for p in _workers(pid) if pid is not None else []:
        # an older kernel or another user's process: the peak then spans the run so far
        with contextlib.suppress(OSError):
            Path(f"/proc/{p}/clear_refs").write_text("5")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def process(
    cmd: list[str],
    env: dict[str, str],
    base: str,
    ready: Callable[[str], bool],
    cwd: Path | None = None,
    quiet: bool = False,
) -> Iterator[str]:
    """Run a server process in its own session, wait until `ready(base)`, stop it on exit."""
    out = subprocess.DEVNULL if quiet else None  # stderr stays: a failing server says why
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, start_new_session=True, cwd=cwd, stdout=out
    )
    try:
        _wait(base, proc, ready)
        _PIDS[base] = proc.pid
        yield base
    finally:
        _PIDS.pop(base, None)
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (workers, node children), SIGKILL after 15 s."""
    with contextlib.suppress(ProcessLookupError):  # it exited already
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def answers_get(path: str) -> Callable[[str], bool]:
    def ready(base: str) -> bool:
        return httpx.get(base + path, timeout=1).status_code < 500

    return ready


@contextmanager
def uvicorn(
    app: str, env: dict[str, str], workers: int, ready_path: str, cwd: str | None = None
) -> Iterator[str]:
    """Run `app` (a factory) as `bookbridge serve` does: uvloop, httptools, no access log;
    from the source tree `cwd` (default: this one)."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    tree = Path(cwd) if cwd is not None else None
    with process(cmd, env, f"http://127.0.0.1:{port}", answers_get(ready_path), cwd=tree) as base:
        yield base


def _wait(
    base: str, proc: subprocess.Popen[bytes], ready: Callable[[str], bool], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: server exited with {proc.returncode}: {base}")
        try:
            if ready(base):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: server not ready after {timeout}s: {base}")
