"""The sync client against a fake transport: batching, keys, CSV, retries, dead letters, resume."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.sync import RetryPolicy, SyncClient, batch_key
from app.sync.client import BatchFailed
from app.sync.reader import read_records
from app.sync.retry import retry_after
from app.sync.state import dead_letter_path

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
Handler = Callable[[httpx.Request, dict[str, Any]], httpx.Response | None]


class FakeServer:
    """Answers ingestion mutations like bookbridge would; `fail` can inject failures."""

    def __init__(
        self, fail: Handler | None = None, reject: Callable[[Any], str | None] | None = None
    ):
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, Any]] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self.fail = fail
        self.reject = reject

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["content-encoding"] == "gzip"
        body = orjson.loads(gzip.decompress(request.content))
        self.requests.append(request)
        self.bodies.append(body)
        if self.fail is not None and (failure := self.fail(request, body)) is not None:
            return failure
        mutation = re.search(r"\{ (\w+)\(input", body["query"])
        assert mutation is not None
        given = body["variables"]["input"]
        key, records = given["idempotencyKey"], given["records"]
        if key in self.applied:
            return httpx.Response(
                200, json={"data": {mutation[1]: {**self.applied[key], "replayed": True}}}
            )
        rejected = [
            {"index": i, "id": r.get("id"), "reason": reason}
            for i, r in enumerate(records)
            if self.reject and (reason := self.reject(r))
        ]
        result = {
            "batchId": f"batch-{len(self.applied)}",
            "replayed": False,
            "received": len(records),
            "inserted": len(records) - len(rejected),
            "updated": 0,
            "unchanged": 0,
            "duplicates": 0,
            "rejected": rejected,
        }
        self.applied[key] = result
        return httpx.Response(200, json={"data": {mutation[1]: result}})

    def records(self) -> list[dict[str, Any]]:
        return [r for b in self.bodies for r in b["variables"]["input"]["records"]]


def client(server: FakeServer, sleeps: list[float] | None = None, **kwargs: Any) -> SyncClient:
    return SyncClient(
        "http://bookbridge.test",
        transport=httpx.MockTransport(server),
        sleep=(sleeps if sleeps is not None else []).append,
        progress=False,
        **kwargs,
    )


def books(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"b{i}",
            "publisherId": "p1",
            "title": f"Book {i}",
            "tags": ["x"],
            "updatedAt": "2026-01-01T00:00:00Z",
        }
        for i in range(start, start + n)
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_file_is_split_into_batches_with_stable_keys(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(1200))
    server = FakeServer()
    summary = client(server, batch_size=500, token="secret").sync_file("books", source)
    sizes = [len(b["variables"]["input"]["records"]) for b in server.bodies]
    assert sizes == [500, 500, 200]
    assert summary.received == summary.inserted == 1200
    assert summary.batches == 3 and summary.failed_batches == 0
    keys = [b["variables"]["input"]["idempotencyKey"] for b in server.bodies]
    assert keys[0] == batch_key("books", books(500))
    assert len(set(keys)) == 3
    request = server.requests[0]
    assert request.url.path == "/graphql"
    assert request.headers["authorization"] == "Bearer secret"
    assert "upsertBooks(input: $input)" in server.bodies[0]["query"]
    assert "UpsertBooksInput!" in server.bodies[0]["query"]

    rerun = client(server, batch_size=500).sync_file("books", source)
    assert [b["variables"]["input"]["idempotencyKey"] for b in server.bodies[3:]] == keys
    assert rerun.replayed_batches == 3 and len(server.applied) == 3


def test_each_request_carries_a_fresh_w3c_traceparent(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(1000))
    server = FakeServer()
    client(server, batch_size=500).sync_file("books", source)
    parsed = [TRACEPARENT.match(r.headers["traceparent"]) for r in server.requests]
    assert all(parsed)
    assert len({m[1] for m in parsed if m}) == 1  # one trace per run
    assert len({m[2] for m in parsed if m}) == 2  # one parent id per request


def test_traceparent_comes_from_opentelemetry_when_configured(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = FakeServer()
    client(server, tracer_provider=provider).send_batch("books", books(3))
    match = TRACEPARENT.match(server.requests[0].headers["traceparent"])
    (span,) = exporter.get_finished_spans()
    assert match and span.name == "sync upsertBooks"
    assert int(match[1], 16) == span.context.trace_id
    assert int(match[2], 16) == span.context.span_id


def test_every_entity_maps_to_its_mutation() -> None:
    expected = {
        "publishers": "upsertPublishers",
        "subjects": "upsertSubjects",
        "grades": "upsertGrades",
        "categories": "upsertCategories",
        "topics": "upsertTopics",
        "books": "upsertBooks",
        "topic_book_mappings": "upsertTopicBookMappings",
        "mappings": "upsertTopicBookMappings",
        "study_sets": "upsertStudySets",
        "engagement_events": "recordEngagementEvents",
        "events": "recordEngagementEvents",
    }
    server = FakeServer()
    sync = client(server)
    for name, mutation in expected.items():
        result = sync.send_batch(name, [{"id": name}])
        assert result.received == 1
        assert f"{{ {mutation}(input: $input)" in server.bodies[-1]["query"]
    with pytest.raises(ValueError, match="unknown entity"):
        sync.send_batch("novels", [])


def test_batch_size_is_validated() -> None:
    for size in (499, 10_001, 0):
        with pytest.raises(ValueError, match="500 to 10000"):
            client(FakeServer(), batch_size=size)


def test_csv_cells_become_graphql_inputs(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text(
        "id,publisher_id,title,description,tags,topicIds,weight\n"
        'b1,p1,"Title, with comma",,"[""a"",""b""]",t1|t2,0.25\n'
        'b2,p1,Plain,"multi\nline",x | y,,\n'
        "b3,p1,Bad,,,,heavy\n",
        encoding="utf-8",
    )
    rows = [r for _, r in read_records(source)]
    assert rows[0] == {
        "id": "b1",
        "publisherId": "p1",
        "title": "Title, with comma",
        "description": None,
        "tags": ["a", "b"],
        "topicIds": ["t1", "t2"],
        "weight": 0.25,
    }
    assert rows[1]["description"] == "multi\nline"
    assert rows[1]["tags"] == ["x", "y"] and rows[1]["topicIds"] is None
    assert rows[1]["weight"] is None
    assert "weight: not a number" in getattr(rows[2], "reason", "")


def test_unreadable_lines_are_dead_lettered_and_the_rest_is_sent(tmp_path: Path) -> None:
    source = tmp_path / "books.jsonl"
    source.write_bytes(b'{"id": "b1", "title": "One"}\n\n{"id": broken\n[1, 2]\n{"id": "b2"}\n')
    server = FakeServer()
    summary = client(server).sync_file("books", source)
    assert [r["id"] for r in server.records()] == ["b1", "b2"]
    assert summary.unreadable_lines == 2
    lines = [orjson.loads(x) for x in dead_letter_path(source).read_bytes().splitlines()]
    assert [(x["kind"], x["line"]) for x in lines] == [("line", 3), ("line", 4)]


def test_transient_failures_are_retried_honouring_retry_after() -> None:
    calls = 0

    def flaky(request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            return httpx.Response(503, headers={"retry-after": "7"})
        if calls == 3:
            return httpx.Response(429, json={"errors": [{"message": "slow down"}]})
        return None

    sleeps: list[float] = []
    rng_policy = RetryPolicy(max_attempts=5, base=0.5, cap=30.0)
    result = client(FakeServer(flaky), sleeps, retry=rng_policy).send_batch("books", books(2))
    assert result.inserted == 2 and calls == 4
    assert len(sleeps) == 3
    assert 0 <= sleeps[0] <= 0.5 and sleeps[1] == 7 and 0 <= sleeps[2] <= 2.0


def test_answers_whose_errors_all_say_service_unavailable_are_retried() -> None:
    """A 200 whose every error is SERVICE_UNAVAILABLE (the database was restarting) is
    transient; a 200 with another error code is not."""
    calls = 0
    unavailable = {"message": "retry shortly", "extensions": {"code": "SERVICE_UNAVAILABLE"}}

    def restarting(request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(200, json={"data": None, "errors": [unavailable]})
        if calls == 2:
            return httpx.Response(
                503, headers={"retry-after": "2"}, json={"data": None, "errors": [unavailable]}
            )
        return None

    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=5, base=0.5, cap=30.0)
    result = client(FakeServer(restarting), sleeps, retry=policy).send_batch("books", books(2))
    assert result.inserted == 2 and calls == 3 and sleeps[1] == 2

    def broken(request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        other = {"message": "boom", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        return httpx.Response(200, json={"data": None, "errors": [unavailable, other]})

    with pytest.raises(BatchFailed) as failed:
        client(FakeServer(broken), [], retry=policy).send_batch("books", books(2))
    assert not failed.value.transient and failed.value.attempts == 1


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base=1.0, cap=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the whole range
    assert policy.delay(3, retry_after=60) == 60
    assert policy.delay(3, retry_after=10_000) == policy.max_retry_after
    response = httpx.Response(503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after(response) == 0.0  # a date in the past: retry now
    assert retry_after(httpx.Response(503)) is None


def test_a_failing_batch_is_dead_lettered_and_the_sync_goes_on(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(1500))
    broken = {"down": True}

    def second_batch_down(request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        first = body["variables"]["input"]["records"][0]["id"]
        return httpx.Response(502) if broken["down"] and first == "b500" else None

    server = FakeServer(second_batch_down)
    sleeps: list[float] = []
    summary = client(server, sleeps, batch_size=500, max_attempts=3).sync_file("books", source)
    assert summary.batches == 2 and summary.failed_batches == 1 and summary.failed_records == 500
    assert len(sleeps) == 2  # three attempts for the failing batch
    (entry,) = [orjson.loads(x) for x in dead_letter_path(source).read_bytes().splitlines()]
    assert entry["kind"] == "batch" and "HTTP 502" in entry["error"]
    assert entry["idempotencyKey"] == batch_key("books", books(500, 500))

    broken["down"] = False
    retried = client(server).retry_dead_letters(dead_letter_path(source))
    assert retried.inserted == 500 and retried.failed_batches == 0
    assert server.bodies[-1]["variables"]["input"]["idempotencyKey"] == entry["idempotencyKey"]
    assert not dead_letter_path(source).exists()
    assert len(server.applied) == 3


def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    def bad_request(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json={"data": None, "errors": [{"message": "key reused"}]})

    sleeps: list[float] = []
    source = write_jsonl(tmp_path / "books.jsonl", books(10))
    summary = client(FakeServer(bad_request), sleeps).sync_file("books", source)
    assert summary.failed_batches == 1 and sleeps == []
    assert "key reused" in dead_letter_path(source).read_text()


def test_rejected_records_are_dead_lettered_with_reasons_and_resent(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(600))
    fixed = {"b7": False}

    def reject(record: dict[str, Any]) -> str | None:
        if record["id"] in ("b7", "b555") and not fixed["b7"]:
            return "publisherId: unknown publisher 'p1'"
        return None

    server = FakeServer(reject=reject)
    summary = client(server, batch_size=500).sync_file("books", source)
    assert summary.rejected == 2 and summary.inserted == 598
    dead = dead_letter_path(source)
    entries = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert [(e["kind"], e["index"], e["record"]["id"]) for e in entries] == [
        ("record", 7, "b7"),
        ("record", 55, "b555"),
    ]
    assert "unknown publisher" in entries[0]["reason"]

    again = client(server).retry_dead_letters(dead)  # still rejected: back in the file
    assert again.rejected == 2 and len(dead.read_bytes().splitlines()) == 2
    fixed["b7"] = True
    done = client(server).retry_dead_letters(dead)
    assert done.inserted == 2 and done.rejected == 0
    assert not dead.exists()


def test_resume_skips_acknowledged_batches_of_the_same_file(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "books.jsonl", books(2000))

    def crash_at_third(request: httpx.Request, body: dict[str, Any]) -> httpx.Response | None:
        first = body["variables"]["input"]["records"][0]["id"]
        return (
            httpx.Response(400, json={"errors": [{"message": "boom"}]})
            if first == "b1000"
            else None
        )

    first = client(FakeServer(crash_at_third), batch_size=500).sync_file("books", source)
    assert first.batches == 3 and first.failed_batches == 1

    server = FakeServer()
    resumed = client(server, batch_size=500).sync_file("books", source, resume=True)
    assert resumed.skipped_batches == 3 and resumed.batches == 1
    assert [r["id"] for r in server.records()][:1] == ["b1000"]

    other_size = client(server, batch_size=1000).sync_file("books", source, resume=True)
    assert other_size.skipped_batches == 0 and other_size.batches == 2

    write_jsonl(source, books(2000, start=5))  # the file changed: nothing is skipped
    changed = client(FakeServer(), batch_size=500).sync_file("books", source, resume=True)
    assert changed.skipped_batches == 0 and changed.batches == 4
