"""`bookbridge serve` on the embedded PostgreSQL (no DATABASE_URL) stops that server when it is
stopped with SIGTERM (systemd, Docker) or SIGINT (Ctrl-C), and starts again on the same data
folder after a kill -9, whether the server survived the crash or died with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import free_port


def postgres_pids(pgdata: Path) -> list[int]:
    """Processes of a PostgreSQL server running on `pgdata` (from /proc: Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"postgres") and str(pgdata).encode() in cmdline:
            found.append(int(entry.name))
    return found


def kill_tree(pid: int) -> None:
    """kill -9 a process and its children (PostgreSQL's backends), and wait until they are gone."""
    family = [pid]
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, NotADirectoryError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            family.append(int(entry.name))
    for member in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{m}/cmdline").exists() for m in family):
        assert time.monotonic() < deadline, "killed processes did not go away"
        time.sleep(0.05)


class Serve:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        environ.update(BOOKBRIDGE_DATA_DIR=str(data_dir), BOOKBRIDGE_LOG_LEVEL="WARNING", **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli.main", "serve", "--port", str(self.port)],
            env=environ,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90  # the first start runs initdb and the migrations
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        self.proc.kill()
        pytest.fail("bookbridge serve did not start")

    def stop(self, sig: int) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("embedded")
    path.chmod(0o755)  # as root, the library runs PostgreSQL as its own user
    yield path
    for pid in postgres_pids(path / "pgdata"):  # a failed test leaves nothing running
        os.kill(pid, signal.SIGKILL)


PRODUCTION = {"BOOKBRIDGE_ENV": "production", "BOOKBRIDGE_JWT_SECRET": "x" * 40}


@pytest.mark.parametrize(
    ("sig", "env"),
    [(signal.SIGTERM, {}), (signal.SIGINT, PRODUCTION)],
    ids=["SIGTERM", "SIGINT-production"],
)
def test_a_signal_stops_the_embedded_server(
    data_dir: Path, sig: signal.Signals, env: dict[str, str]
) -> None:
    pgdata = (data_dir / "pgdata").resolve()
    serve = Serve(data_dir, **env)
    assert postgres_pids(pgdata), "the embedded server should be running"
    page = httpx.get(f"http://127.0.0.1:{serve.port}/graphql", headers={"accept": "text/html"})
    code, err = serve.stop(sig)
    assert code in (0, 128 + sig, -sig), err
    assert "Traceback" not in err
    assert postgres_pids(pgdata) == []
    assert not (pgdata / "postmaster.pid").exists()
    if env:  # production: no GraphiQL, and serve does not advertise it
        assert page.status_code == 404
        assert "GraphiQL at" not in err and "(GraphiQL off)" in err
    else:
        assert page.status_code == 200 and "GraphiQL at" in err


def test_a_start_after_kill_9_recovers_and_stops_cleanly(data_dir: Path) -> None:
    pgdata = (data_dir / "pgdata").resolve()
    serve = Serve(data_dir)
    serve.proc.kill()  # kill -9: the embedded server outlives the process that started it
    serve.proc.communicate()
    assert postgres_pids(pgdata)
    again = Serve(data_dir)  # attaches to the orphaned server
    again.stop(signal.SIGTERM)
    assert postgres_pids(pgdata) == []  # and, as the last user, stops it

    crashed = Serve(data_dir)
    for pid in postgres_pids(pgdata):  # a crash of everything: a stale postmaster.pid is left
        kill_tree(pid)
    crashed.proc.kill()
    crashed.proc.communicate()
    assert (pgdata / "postmaster.pid").exists()
    last = Serve(data_dir)
    last.stop(signal.SIGTERM)
    assert postgres_pids(pgdata) == []
