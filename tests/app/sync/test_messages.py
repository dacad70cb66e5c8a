"""`bookbridge sync` tells a person what went wrong in a line or two: usage errors (exit 2, never
retried), unreadable files (exit 1), a batch's errors summarised per reason with the first ids
(the full list in the dead-letter file), and a progress bar with a total when it is known."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from app.cli.main import main
from app.core.settings import Settings
from app.runtime.services import Services
from app.sync import SyncClient
from app.sync.report import graphql_errors, summarise
from app.sync.state import dead_letter_path
from tests.app.sync.test_live import books, write_jsonl
from tests.live import admin_token, serve


@pytest.fixture(scope="module")
async def live(settings: Settings) -> AsyncIterator[str]:
    with serve(settings) as url:
        yield url


def sync(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # main() installs its own stderr handler
    capsys.readouterr()
    try:
        code = main(["sync", *args, "--token", admin_token() or "", "--no-progress"])
    finally:
        root.handlers[:], root.level = handlers, level
    return code, capsys.readouterr().err


def test_a_url_without_scheme_is_a_usage_error_never_retried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(3))
    code, err = sync(capsys, "--url", "127.0.0.1:8000", "--entity", "books", str(source))
    assert code == 2
    assert err.strip().splitlines() == [
        "bookbridge sync: --url '127.0.0.1:8000' needs http:// or https:// and a host, "
        "e.g. http://127.0.0.1:8000"
    ]
    assert not dead_letter_path(source).exists()


@pytest.mark.parametrize(
    ("name", "content", "code", "says"),
    [
        ("missing.jsonl", None, 2, "no such file"),
        ("records.txt", b'{"id": "b1"}\n', 2, "unknown input format; use .jsonl or .csv"),
        ("latin1.jsonl", b'{"id": "b\xe9"}\n', 1, "cannot read"),
        ("cut.jsonl.gz", gzip.compress(b'{"id": "b1"}\n' * 100)[:40], 1, "cannot read"),
        ("plain.jsonl.gz", b'{"id": "b1"}\n', 1, "Not a gzipped file"),
    ],
)
def test_unusable_input_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    code: int,
    says: str,
) -> None:
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    got, err = sync(capsys, "--url", "http://127.0.0.1:1", "--entity", "books", str(source))
    assert got == code, err
    assert says in err and "Traceback" not in err
    assert 1 <= len(err.strip().splitlines()) <= 2, err


def test_a_directory_is_not_an_input_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = sync(capsys, "--url", "http://127.0.0.1:1", "--entity", "books", str(tmp_path))
    assert code == 2 and "is a directory" in err


async def test_books_sent_as_publishers_give_one_short_line_per_batch(
    live: str, services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(1200))
    client = SyncClient(live, admin_token(), 1000, max_attempts=1)
    with client, caplog.at_level(logging.ERROR, logger="app.sync"):
        summary = await asyncio.to_thread(client.sync_file, "publishers", source)
    assert summary.failed_batches == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "app.sync"]
    assert len(lines) == 2
    for line in lines:
        assert len(line) < 700, line
        assert "unknown field 'title'" in line and "is --entity right" in line
    assert "b0000, b0001, b0002, ..." in lines[0] and "b1000, b1001, b1002, ..." in lines[1]
    dead = [orjson.loads(x) for x in dead_letter_path(source).read_bytes().splitlines()]
    assert len(dead) == 2 and all(len(e["error"]) > 5_000 for e in dead)  # the full list


async def test_rejected_records_are_counted_per_reason(
    live: str, services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    orphans = [{**b, "publisherId": "p9"} for b in books(600)]
    source = write_jsonl(tmp_path / "books.jsonl", orphans)
    client = SyncClient(live, admin_token(), 500)
    with client, caplog.at_level(logging.WARNING, logger="app.sync"):
        summary = await asyncio.to_thread(client.sync_file, "books", source)
    assert summary.rejected == 600
    lines = [r.getMessage() for r in caplog.records if r.name == "app.sync"]
    assert lines[0] == (
        "upsertBooks (batch 0, line 1) rejected 500 errors: "
        "publisherId 'p9' does not exist (500: b0000, b0001, b0002, ...)"
    )
    report = summary.report()
    assert "rejected because" in report and "600  publisherId 'p9' does not exist" in report
    assert len(dead_letter_path(source).read_bytes().splitlines()) == 600


async def test_the_progress_bar_shows_the_total_and_percentage(
    live: str, services: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "publishers.csv"
    source.write_text("id,name\n" + "".join(f"p{i},P {i}\n" for i in range(1500)))
    with SyncClient(live, admin_token(), 500, progress=True) as client:
        await asyncio.to_thread(client.sync_file, "publishers", source)
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "publishers.csv:  33%" in bar and "100%" in bar
    assert "1.50k/1.50k" in bar


def test_summaries_keep_the_most_frequent_reasons() -> None:
    errors = [("a", f"x{i}") for i in range(5)] + [("b", "y"), ("c", None), ("d", "z")]
    assert summarise(errors) == (
        "8 errors: a (5: x0, x1, x2, ...); b (1: y); c (1); and 1 more reasons"
    )
    message = "; ".join(
        f"Variable '$input' has invalid value at .records[{i}]: Expected value of type "
        f"'PublisherInput' not to include unknown field 'title', found: {{'id': 'b{i}'}}."
        for i in range(2)
    )
    records = [{"id": "b0"}, {"id": "b1"}]
    assert graphql_errors(message, records) == (
        "2 errors: Expected value of type 'PublisherInput' not to include unknown field "
        "'title' (2: b0, b1) (is --entity right for this file?)"
    )
