"""The sync client and `bookbridge sync` end to end against a real server over loopback HTTP."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from app.cli.main import main
from app.core.settings import Settings
from app.runtime.services import Services
from app.sync import SyncClient
from app.sync.state import dead_letter_path
from tests.live import admin_token, serve


@pytest.fixture(scope="module")
async def live(settings: Settings) -> AsyncIterator[str]:
    with serve(settings) as url:
        yield url


class FlakyNetwork(httpx.BaseTransport):
    """The real network, except that requests whose batch matches `down` fail to connect."""

    def __init__(self, down: Callable[[list[dict[str, Any]]], bool]) -> None:
        self.real = httpx.HTTPTransport()
        self.down = down

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        records = orjson.loads(gzip.decompress(request.read()))["variables"]["input"]["records"]
        if self.down(records):
            raise httpx.ConnectError("network unreachable", request=request)
        return self.real.handle_request(request)

    def close(self) -> None:
        self.real.close()


def books(n: int, version: str = "2026-01-01T00:00:00Z") -> list[dict[str, Any]]:
    return [
        {
            "id": f"b{i:04}",
            "publisherId": f"p{i % 2 + 1}",
            "title": f"Book {i}",
            "description": "",
            "tags": ["fiction"],
            "updatedAt": version,
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


async def cli(*args: str) -> int:
    token = admin_token()
    extra = ["--token", token] if token else []
    return await asyncio.to_thread(main, ["sync", *args, *extra, "--no-progress"])


def summary_of(err: str) -> dict[str, float]:
    """The last `bookbridge sync` end summary printed to stderr, as {row name: value}."""
    block = err.rsplit("bookbridge sync:\n", 1)[-1]
    rows = (line.strip().rsplit(None, 1) for line in block.splitlines() if line[:2] == "  ")
    return {name.strip(): float(value) for name, value in rows if value[:1].isdigit()}


async def scalar(services: Services, sql: str) -> Any:
    async with services.read_engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def publishers(live: str, tmp_path: Path) -> None:
    source = tmp_path / "publishers.csv"
    source.write_text("id,name\np1,Publisher One\np2,Publisher Two\n", encoding="utf-8")
    assert await cli("--url", live, "--entity", "publishers", str(source)) == 0


async def test_cli_sync_stores_everything_and_a_rerun_replays(
    services: Services, live: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await publishers(live, tmp_path)
    source = write_jsonl(tmp_path / "books.jsonl", books(1500))
    args = ("--url", live, "--entity", "books", "--batch-size", "500", str(source))
    assert await cli(*args) == 0
    summary = summary_of(capsys.readouterr().err)
    assert summary["records received"] == summary["inserted"] == 1500
    assert await scalar(services, "SELECT count(*) FROM books") == 1500
    log = "SELECT count(*) FROM ingestion_batches WHERE entity = 'books'"
    assert await scalar(services, log) == 3

    assert await cli(*args) == 0
    assert summary_of(capsys.readouterr().err)["of which replayed"] == 3
    assert await scalar(services, log) == 3  # nothing applied twice
    assert await scalar(services, "SELECT count(*) FROM books") == 1500


async def test_failed_batch_and_rejected_record_are_dead_lettered_then_resent(
    services: Services, live: str, tmp_path: Path
) -> None:
    await publishers(live, tmp_path)
    orphan = {**books(1)[0], "id": "b-orphan", "publisherId": "p9"}
    source = write_jsonl(tmp_path / "books.jsonl", [*books(1500), orphan])
    network = FlakyNetwork(lambda records: records[0]["id"] == "b0500")
    sync = SyncClient(
        live, admin_token(), 500, max_attempts=2, transport=network, sleep=lambda s: None
    )
    with sync:
        summary = await asyncio.to_thread(sync.sync_file, "books", source)
    assert summary.failed_batches == 1 and summary.failed_records == 500
    assert summary.rejected == 1 and summary.inserted == 1000
    dead = dead_letter_path(source)
    entries = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert sorted(e["kind"] for e in entries) == ["batch", "record"]
    (rejected,) = [e for e in entries if e["kind"] == "record"]
    assert rejected["record"]["id"] == "b-orphan" and "p9" in rejected["reason"]
    assert await scalar(services, "SELECT count(*) FROM books") == 1000

    with SyncClient(live, admin_token()) as fix:
        await asyncio.to_thread(fix.send_batch, "publishers", [{"id": "p9", "name": "Nine"}])
    assert await cli("--url", live, "--retry-dead-letters", "--dead-letter", str(dead)) == 0
    assert await scalar(services, "SELECT count(*) FROM books") == 1501
    assert not dead.exists()


async def test_resume_skips_the_batches_the_server_acknowledged(
    services: Services, live: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await publishers(live, tmp_path)
    source = write_jsonl(tmp_path / "books.jsonl", books(1500))
    network = FlakyNetwork(lambda records: records[0]["id"] == "b0500")
    sync = SyncClient(
        live, admin_token(), 500, max_attempts=1, transport=network, sleep=lambda s: None
    )
    with sync:
        first = await asyncio.to_thread(sync.sync_file, "books", source)
    assert first.failed_batches == 1
    capsys.readouterr()

    args = ("--url", live, "--entity", "books", "--batch-size", "500", "--resume", str(source))
    assert await cli(*args) == 0
    summary = summary_of(capsys.readouterr().err)
    assert summary["batches skipped (resume)"] == 2 and summary["batches sent"] == 1
    assert await scalar(services, "SELECT count(*) FROM books") == 1500
