"""Crash recovery: `bookbridge serve` is SIGKILLed in the middle of a 10,000-record batch; after a
restart and a rerun of the sync every record is stored exactly once, with its newest version."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from app.cli.main import main
from app.runtime.services import Services
from app.sync import SyncClient
from app.sync.state import dead_letter_path
from tests.live import admin_token, free_port

V1, V2 = "2026-01-01T00:00:00+00:00", "2026-03-01T00:00:00+00:00"
BLOCKED_ID = "b05000"  # the server's upsert (keys in order) stops here, half the batch written


def books(ids: range, version: str, label: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"b{i:05}",
            "publisherId": "p1",
            "title": f"{label} {i}",
            "description": f"version {version}",
            "tags": ["crash"],
            "updatedAt": version,
        }
        for i in ids
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@contextmanager
def bookbridge_serve(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`bookbridge serve` as a child process on a free port; yields it once /readyz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=database_url, BOOKBRIDGE_ENV="test", BOOKBRIDGE_LOG_LEVEL="WARNING")
    if admin_token() is not None:
        from tests.auth_helpers import SECRET

        env["BOOKBRIDGE_JWT_SECRET"] = SECRET
    command = [sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded 2-core machine can take 20 s+
        while True:
            assert proc.poll() is None, "bookbridge serve exited"
            assert time.monotonic() < deadline, "bookbridge serve did not become ready"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def scalar(services: Services, sql: str) -> Any:
    async with services.read_engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def wait_until(services: Services, sql: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await scalar(services, sql):
        assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
        await asyncio.sleep(0.01)


OTHER_WRITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
)
# the server's transaction has written rows and now waits for our lock on BLOCKED_ID
SERVER_MID_BATCH = OTHER_WRITERS + " AND wait_event_type = 'Lock'"


async def test_sigkill_mid_batch_then_restart_and_rerun_stores_each_record_once_newest(
    services: Services, tmp_path: Path
) -> None:
    url_db = services.settings.database_url
    assert url_db is not None
    old = write_jsonl(tmp_path / "books-v1.jsonl", books(range(10_000), V1, "A"))
    new = write_jsonl(tmp_path / "books-v2.jsonl", books(range(4_000, 8_000), V2, "B"))
    token = admin_token()
    with bookbridge_serve(url_db) as (proc, url):
        with SyncClient(url, token) as seed:
            await asyncio.to_thread(seed.send_batch, "publishers", [{"id": "p1", "name": "One"}])
        # Hold one row of the batch in an open transaction, so the kill lands mid-batch.
        async with services.engine.connect() as blocker:
            await blocker.execute(
                text(
                    "INSERT INTO books (id, publisher_id, title, tags, updated_at) "
                    "VALUES (:id, 'p1', 'blocker', '{}', :v)"
                ),
                {"id": BLOCKED_ID, "v": datetime.fromisoformat(V1)},
            )
            sync = SyncClient(url, token, batch_size=10_000, max_attempts=1)
            killed_run = asyncio.create_task(asyncio.to_thread(sync.sync_file, "books", old))
            await wait_until(services, SERVER_MID_BATCH)
            os.kill(proc.pid, signal.SIGKILL)
            summary = await killed_run
            sync.close()
            await blocker.rollback()
    assert summary.failed_batches == 1 and summary.inserted == 0
    await wait_until(services, f"SELECT ({OTHER_WRITERS}) = 0")  # the orphaned backend aborted
    assert await scalar(services, "SELECT count(*) FROM books") == 0  # nothing half-applied

    with bookbridge_serve(url_db) as (_, url):
        with SyncClient(url, token, batch_size=10_000) as client:
            newer = await asyncio.to_thread(client.sync_file, "books", new)
            assert newer.inserted == 4_000
            rerun = await asyncio.to_thread(client.sync_file, "books", old)
        assert (rerun.inserted, rerun.updated, rerun.unchanged) == (6_000, 0, 4_000)
        retried = ["sync", "--url", url, "--retry-dead-letters", "--no-progress"]
        retried += ["--dead-letter", str(dead_letter_path(old))]
        retried += ["--token", token] if token else []
        assert await asyncio.to_thread(main, retried) == 0  # same key as the rerun: replayed

    counts = (
        "SELECT count(*), count(DISTINCT id), "
        f"count(*) FILTER (WHERE title LIKE 'A %' AND updated_at = '{V1}'), "
        f"count(*) FILTER (WHERE title LIKE 'B %' AND updated_at = '{V2}' "
        "AND id BETWEEN 'b04000' AND 'b07999') FROM books"
    )
    async with services.read_engine.connect() as conn:
        row = (await conn.execute(text(counts))).one()
        batches = (
            await conn.execute(
                text("SELECT count(*), sum(received) FROM ingestion_batches WHERE entity='books'")
            )
        ).one()
    assert tuple(row) == (10_000, 10_000, 6_000, 4_000)
    assert tuple(batches) == (2, 14_000)  # the old file applied once, the new one once
