"""Operations: /metrics, /healthz, /readyz, JSON logs with trace ids, and OpenTelemetry spans
(incoming traceparent continued; operation, dataloader and SQL spans; no variables or ids)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from app import __version__
from app.core.settings import Settings
from app.db import models
from app.observability import spans as spans_module
from app.observability import tracing
from app.observability.logging import JsonFormatter
from app.observability.spans import tracer
from app.runtime.services import Services
from app.server.factory import create_app
from tests import factories
from tests.conftest import GraphQLClient
from tests.ingest_helpers import apply

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SECRET_VARIABLE = "stu-variable-9d1e"


async def test_metrics_expose_operations_ingestion_and_dead_letters(
    services: Services, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    await gql.data("query CatalogPage { subjects { id } }")
    await factories.catalog(services, books=3)
    when = factories.T0
    await factories.insert_rows(
        services,
        models.StudySet,
        [{"id": "ss1", "user_id": "u1", "title": "S", "created_at": when, "subject_id": "s1"}],
    )
    await gql.data('{ recommendations(studySetId: "ss1") { strategy } }')
    await apply(gql, "subjects", [{"id": "s9", "name": "Art"}, {"id": "", "name": "bad"}])
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'bookbridge_graphql_operation_duration_seconds_count{operation="CatalogPage",type="query"}'
        in text
    )
    assert 'bookbridge_ingestion_records_total{entity="subjects",outcome="inserted"}' in text
    assert 'bookbridge_ingestion_batches_total{entity="subjects",outcome="partial"}' in text
    assert "bookbridge_dead_letters 1.0" in text
    assert 'bookbridge_http_requests_total{method="POST",route="/graphql",status="200"}' in text
    assert 'bookbridge_cache_lookups_total{cache="reco",result="miss"}' in text
    assert "bookbridge_recommendation_duration_seconds_count{strategy=" in text
    assert "bookbridge_worker_job_duration_seconds" in text
    assert f'bookbridge_build_info{{version="{__version__}"}} 1.0' in text
    assert 'bookbridge_ingestion_last_success_timestamp_seconds{entity="subjects"}' in text
    assert "bookbridge_db_pool_connections_in_use " in text
    assert "bookbridge_db_pool_waiting 0.0" in text
    assert "bookbridge_ready 1.0" in text


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "version": __version__}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def test_json_logs_carry_the_trace_id() -> None:
    provider = TracerProvider()
    record = logging.LogRecord("bookbridge.x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    record.error_id = "abc123"
    with provider.get_tracer("t").start_as_current_span("s") as span:
        line = orjson.loads(JsonFormatter().format(record))
        assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["message"] == "hello w" and line["error_id"] == "abc123"
    assert line["level"] == "info" and line["logger"] == "bookbridge.x"


@pytest.fixture
def spans(services: Services) -> Iterator[InMemorySpanExporter]:
    """Spans recorded in memory, the provider installed as the service's global one."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, services, make_global=False)  # the API's global is set once
    assert spans_module.tracer("tests.fixture") is not None
    yield exporter
    tracing.uninstall()
    provider.shutdown()
    assert spans_module.tracer("tests.fixture") is None  # other tests see tracing off


def _attributes(span: ReadableSpan) -> str:
    return " ".join(f"{k}={v!r}" for k, v in (span.attributes or {}).items())


async def test_spans_continue_the_callers_trace_without_ids_or_variables(
    services: Services, gql: GraphQLClient, http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await factories.catalog(services, books=4)
    spans.clear()
    query = (
        "query Shelf($q: String) { books(first: 3, filter: {search: $q}) "
        '{ edges { node { id publisher { id name } } } } one: book(id: "b0001") { id } }'
    )
    off = services.settings.model_copy(update={"compiled_reads": False})
    transport = httpx.ASGITransport(app=create_app(settings=off, services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as resolvers:
        # compiled reads on (one statement), then off (field resolvers and dataloaders)
        for client, work in ((http, "graphql.compiled_read"), (resolvers, "dataloader ")):
            spans.clear()
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": {"q": SECRET_VARIABLE}},
                headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
            )
            assert response.status_code == 200
            finished = spans.get_finished_spans()
            assert finished and all(
                format(s.context.trace_id, "032x") == TRACE_ID for s in finished
            )
            by_name = {s.name: s for s in finished}
            server = by_name["POST /graphql"]
            assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
            operation = by_name["graphql.query Shelf"]
            assert operation.parent is not None
            assert operation.parent.span_id == server.context.span_id
            assert any(name.startswith(work) for name in by_name), list(by_name)
            sql = [s for s in finished if "db.statement" in (s.attributes or {})]
            assert sql, [s.name for s in finished]
            for span in finished:
                text = _attributes(span)
                assert SECRET_VARIABLE not in text and "b0001" not in text
                assert "p1" not in text.split()


async def test_a_caller_that_sampled_out_gets_no_spans_downstream(
    services: Services, gql: GraphQLClient, http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await factories.catalog(services, books=2)
    spans.clear()
    response = await http.post(
        "/graphql",
        json={"query": "{ books(first: 2) { edges { node { id publisher { id } } } } }"},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"},  # flags 00: not sampled
    )
    assert response.status_code == 200 and "errors" not in response.json()
    assert spans.get_finished_spans() == ()


def test_an_escaping_exception_marks_its_span(spans: InMemorySpanExporter) -> None:
    from opentelemetry.trace import StatusCode

    from app.observability.spans import span, tracer

    spans.clear()
    with pytest.raises(ValueError), span(tracer("tests"), "failing", {"k": 1}):
        raise ValueError("boom")
    (done,) = spans.get_finished_spans()
    assert done.name == "failing" and done.status.status_code is StatusCode.ERROR
    assert done.events[0].name == "exception"
    assert trace.get_current_span() is trace.INVALID_SPAN  # the context was restored


def _log_line() -> dict[str, Any]:
    """What a JSON log line written now carries (its trace and span ids among the fields)."""
    result: dict[str, Any] = orjson.loads(
        JsonFormatter().format(logging.makeLogRecord({"msg": "x"}))
    )
    return result


def _log_ids(context: SpanContext) -> tuple[str, str]:
    """A span context's ids as log lines write them."""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _ratio_tracer(
    monkeypatch: pytest.MonkeyPatch, ratio: str, scope: str
) -> tuple[TracerProvider, InMemorySpanExporter, spans_module.Tracer]:
    """A `parentbased_traceidratio` provider as make_provider builds it, spans kept in memory,
    and its tracer of `scope`."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    exporter = InMemorySpanExporter()
    provider = tracing.make_provider({"OTEL_TRACES_EXPORTER": "otlp"}, exporter)
    assert provider is not None
    found = tracer(scope, provider)
    assert found is not None
    return provider, exporter, found


def test_a_sampled_out_root_keeps_its_ids_and_restores_the_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.observability.spans import span

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0", "tests.sampled_out")
    seen = set()
    for _ in range(3):
        with pytest.raises(ValueError, match="boom"), span(tracer_, "root") as root:
            assert not root.is_recording() and trace.get_current_span() is root
            first = root.get_span_context()
            assert first.is_valid and not first.trace_flags.sampled
            assert root.get_span_context() == first
            line = _log_line()
            assert (line["trace_id"], line["span_id"]) == _log_ids(first)
            with span(tracer_, "child") as child:
                assert not child.is_recording() and trace.get_current_span() is child
                assert child.get_span_context().trace_id == first.trace_id
            assert trace.get_current_span() is root
            seen.add(first.trace_id)
            raise ValueError("boom")
        assert trace.get_current_span() is trace.INVALID_SPAN
    assert len(seen) == 3  # a trace id per root
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
    provider.shutdown()


def test_a_quiet_root_sampled_out_is_current_for_our_spans_and_logs_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The HTTP middleware's root (`quiet=True`) sampled out: a valid, unsampled trace whose
    ids are stable and are what log lines show, under which our spans and the instrumentors'
    start nothing; OpenTelemetry's context is not switched, and everything is restored after
    it, also when an exception escapes. Sampled in, it is the recording span, made current."""
    from app.observability.spans import ChildrenSkipped, current_span, span

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0", "tests.quiet")
    instrumented = ChildrenSkipped(provider).get_tracer("tests.quiet.redis")
    seen = set()
    for _ in range(3):
        with pytest.raises(ValueError, match="boom"), span(tracer_, "root", quiet=True) as root:
            assert not root.is_recording() and current_span() is root
            assert trace.get_current_span() is trace.INVALID_SPAN  # no context switch
            first = root.get_span_context()
            assert first.is_valid and not first.trace_flags.sampled and not first.is_remote
            assert root.get_span_context() == first
            line = _log_line()
            assert (line["trace_id"], line["span_id"]) == _log_ids(first)
            with span(tracer_, "child") as child:
                assert child is root and current_span() is root
            assert instrumented.start_span("GET") is root
            with instrumented.start_as_current_span("SET") as command:
                assert command is root
            root.set_attribute("http.response.status_code", 200)
            seen.add(first.trace_id)
            raise ValueError("boom")
        assert current_span() is trace.INVALID_SPAN
        assert "trace_id" not in _log_line()
    assert len(seen) == 3
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
    provider.shutdown()

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0.999999", "tests.quiet.kept")
    with span(tracer_, "root", quiet=True) as root, span(tracer_, "child") as child:
        assert root.is_recording() and trace.get_current_span() is child
        assert current_span() is child and child.get_span_context().trace_id == (
            root.get_span_context().trace_id
        )
    provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["child", "root"]
    provider.shutdown()


def test_a_root_sampled_out_before_the_sdk_is_the_span_the_sdk_would_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A root of a `make_provider` provider (ids from `RootIds`) that the ratio drops is made
    by `spans.span` without the SDK's `start_span`: the same kind of span, flags and trace
    state as the SDK's own sampled-out root, a fresh trace and span id each time; a root the
    ratio keeps is the SDK's span with the trace id the decision was made on, and no later
    root gets that id again."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from app.observability.spans import RootIds, span

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0", "tests.fast_root")
    plain = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    sdk_root = plain.get_tracer("tests.fast_root.sdk").start_span("root", kind=SpanKind.SERVER)
    ids = set()
    for _ in range(3):
        with span(tracer_, "root", {"http.route": "/graphql"}, SpanKind.SERVER) as root:
            ours = root.get_span_context()
            theirs = sdk_root.get_span_context()
            assert type(root) is type(sdk_root) and not root.is_recording()
            assert (ours.trace_flags, ours.trace_state, ours.is_remote) == (
                theirs.trace_flags,
                theirs.trace_state,
                theirs.is_remote,
            )
            assert ours.is_valid and not ours.trace_flags.sampled
            ids.add((ours.trace_id, ours.span_id))
    assert len(ids) == 3
    provider.shutdown()

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0.999999", "tests.fast_root.kept")
    generator = RootIds()
    with span(tracer_, "root") as root:
        kept = root.get_span_context()
        assert root.is_recording() and kept.trace_flags.sampled
        assert generator.generate_trace_id() != kept.trace_id  # the hand-over was for one call
    provider.force_flush()
    (done,) = exporter.get_finished_spans()
    assert done.context.trace_id == kept.trace_id and done.parent is None
    provider.shutdown()


async def test_an_incoming_traceparent_is_continued_not_decided_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller's sampled traceparent makes the server span its child even where the ratio
    would drop a root of ours (roots are decided before the SDK only without a caller)."""
    from opentelemetry import propagate

    from app.observability.spans import span

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0", "tests.fast_root.remote")
    caller = propagate.extract({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    with span(tracer_, "GET /graphql", None, SpanKind.SERVER, caller) as server:
        assert server.is_recording()
        assert format(server.get_span_context().trace_id, "032x") == TRACE_ID
    provider.force_flush()
    (done,) = exporter.get_finished_spans()
    assert done.parent is not None and format(done.parent.span_id, "016x") == PARENT_ID
    provider.shutdown()


def test_spans_export_their_attributes_events_status_and_parents() -> None:
    """What `spans.span` records reaches the processors and the OTLP request: names, kinds,
    attributes as the SDK cleans them, events, status (OK is final), the parent."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from app.observability.spans import span

    attributes = {"http.request.method": "POST", "n": 3, "ok": True, "tags": ("a", "b")}
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer_ = tracer("tests.export", provider)
    assert tracer_ is not None
    with span(tracer_, "root", attributes, SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 200)
        root.set_attribute("ids", [1, 2])  # kept as a tuple
        root.add_event("checkpoint", {"step": 1})
        with pytest.raises(ValueError), span(tracer_, "child"):
            raise ValueError("boom")
        with span(tracer_, "renamed") as renamed:
            renamed.update_name("renamed later")
            renamed.set_status(StatusCode.OK)
            renamed.set_status(StatusCode.ERROR)  # OK is final
    root.set_attribute("after", "end")  # ignored: the span ended
    provider.shutdown()
    child, later, done = exporter.get_finished_spans()
    assert [s.name for s in (child, later, done)] == ["child", "renamed later", "root"]
    assert done.kind is SpanKind.SERVER and done.parent is None
    assert child.parent is not None and child.parent.span_id == done.context.span_id
    assert later.parent is not None and later.parent.span_id == done.context.span_id
    assert child.context.trace_id == done.context.trace_id == later.context.trace_id
    kept = dict(done.attributes or {})
    assert {k: kept[k] for k in attributes} == attributes
    assert (kept["http.response.status_code"], kept["ids"]) == (200, (1, 2))
    assert "after" not in kept
    assert [e.name for e in done.events] == ["checkpoint"]
    assert child.status.status_code is StatusCode.ERROR
    assert child.status.description == "ValueError: boom"
    assert [e.name for e in child.events] == ["exception"]
    assert later.status.status_code is StatusCode.OK
    encoded = MessageToDict(encode_spans([child, later, done]))
    sent = encoded["resourceSpans"][0]["scopeSpans"][0]
    assert sent["scope"]["name"] == "tests.export"
    assert [s["name"] for s in sent["spans"]] == ["child", "renamed later", "root"]


def test_spans_cost_nothing_with_tracing_off() -> None:
    from app.observability.spans import span, tracer

    assert tracer("tests") is None
    with span(None, "ignored") as got:
        assert got is trace.INVALID_SPAN and not got.is_recording()


async def test_redis_commands_are_traced_without_their_arguments(settings: Settings) -> None:
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        if os.environ.get("CI"):
            pytest.fail("TEST_REDIS_URL must be set in CI")
        pytest.skip("no TEST_REDIS_URL")
    services = Services.create(settings.model_copy(update={"redis_url": redis_url}))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        tracing.install(provider, services, make_global=False)
        assert services.redis is not None
        await services.redis.set("bb:test:stu-redis-secret", "stu-redis-secret", ex=5)
        await services.redis.delete("bb:test:stu-redis-secret")
    finally:
        tracing.uninstall()
        provider.shutdown()
        await services.close()
    commands = [s for s in exporter.get_finished_spans() if s.name in ("SET", "DEL")]
    assert [s.name for s in commands] == ["SET", "DEL"]
    assert all("stu-redis-secret" not in _attributes(s) for s in commands)


def test_the_exporter_follows_the_otel_variables() -> None:
    assert tracing.exporter_name({}) == "none"
    assert tracing.exporter_name({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == "otlp"
    assert tracing.exporter_name({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}
    assert tracing.exporter_name(disabled) == "none"
    assert tracing.make_provider({}) is None
    provider = tracing.make_provider({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "bookbridge"
    provider.shutdown()


def test_sampled_out_spans_keep_the_samplers_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """`spans.span` under a `parentbased_traceidratio` provider samples the roots the ratio
    says, keeps one trace id per request (log lines show it sampled or not), and records no
    child of a sampled-out root."""
    from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

    from app.observability.spans import span

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0.25", "tests.sampling")
    sdk_rule = TraceIdRatioBased(0.25)
    roots: dict[int, bool] = {}  # trace id -> the SDK sampler's decision
    for _ in range(2000):
        with span(tracer_, "root") as root:
            trace_id = root.get_span_context().trace_id
            assert trace.get_current_span() is root and root.get_span_context().is_valid
            decision = sdk_rule.should_sample(None, trace_id, "root").decision
            roots[trace_id] = decision is Decision.RECORD_AND_SAMPLE
            assert root.is_recording() is roots[trace_id]
            with span(tracer_, "child") as child:
                assert child.get_span_context().trace_id == trace_id
                assert _log_line()["trace_id"] == format(trace_id, "032x")
        assert trace.get_current_span() is trace.INVALID_SPAN
    provider.force_flush()
    finished = exporter.get_finished_spans()
    provider.shutdown()
    sampled = {t for t, yes in roots.items() if yes}
    assert 400 <= len(sampled) <= 600  # 2000 x 0.25, binomial sd 19
    assert {s.context.trace_id for s in finished} == sampled
    by_trace: dict[int, dict[str, ReadableSpan]] = {}
    for s in finished:
        by_trace.setdefault(s.context.trace_id, {})[s.name] = s
    for found in by_trace.values():
        assert set(found) == {"root", "child"}
        assert found["child"].parent is not None
        assert found["child"].parent.span_id == found["root"].context.span_id
        assert found["root"].parent is None


async def test_access_log_lines_carry_request_operation_and_trace(
    services: Services, http: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    from tests.app.observability.test_logs import Lines

    await factories.catalog(services, books=2)
    access = logging.getLogger("bookbridge.access")
    lines, level = Lines(JsonFormatter()), access.level
    access.addHandler(lines)
    access.setLevel(logging.INFO)
    try:
        response = await http.post(
            "/graphql",
            json={"query": "query Shelf { books(first: 1) { edges { node { id } } } }"},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
    finally:
        access.removeHandler(lines)
        access.setLevel(level)
    assert response.status_code == 200
    (line,) = lines.lines
    fields = orjson.loads(line)
    assert fields["method"] == "POST" and fields["path"] == "/graphql"
    assert fields["status"] == 200 and fields["duration_ms"] > 0
    assert fields["operation"] == "Shelf" and fields["trace_id"] == TRACE_ID
    assert fields["message"] == "POST /graphql 200"


def test_children_of_a_sampled_out_span_cost_no_span_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a parent-based sampler (every `parentbased_*`), a child of a sampled-out span would
    be dropped by the sampler: the parent stands for it (no ids made, no context switch); a
    sampler that is not parent-based still decides each child itself."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from app.observability.spans import span

    provider, _, tracer_ = _ratio_tracer(monkeypatch, "0", "tests.children")
    with span(tracer_, "root") as root, span(tracer_, "child") as child:
        assert child is root and trace.get_current_span() is root
    assert trace.get_current_span() is trace.INVALID_SPAN
    provider.shutdown()
    exporter = InMemorySpanExporter()
    always = TracerProvider(sampler=ALWAYS_ON)
    always.add_span_processor(SimpleSpanProcessor(exporter))
    independent = tracer("tests.children.always", always)
    assert independent is not None
    with span(independent, "root") as root, span(independent, "child") as child:
        assert child is not root and child.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["child", "root"]
    always.shutdown()


def test_instrumentation_starts_no_span_under_a_sampled_out_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tracers the Redis and SQLAlchemy instrumentors get (`spans.ChildrenSkipped`): under
    a sampled-out parent a span they start is that parent (the sampler would drop theirs);
    under a sampled one, the SDK's child span; a sampler that is not parent-based decides
    each span as before (its tracers are the SDK's own)."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from app.observability.spans import ChildrenSkipped, span

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "0", "tests.skipped")
    instrumented = ChildrenSkipped(provider).get_tracer("tests.skipped.redis", "1.0")
    with span(tracer_, "root") as root:
        assert instrumented.start_span("SET", kind=SpanKind.CLIENT) is root
        with instrumented.start_as_current_span("GET", kind=SpanKind.CLIENT) as current:
            assert current is root and trace.get_current_span() is root
    assert trace.get_current_span() is trace.INVALID_SPAN
    provider.force_flush()
    assert exporter.get_finished_spans() == ()
    provider.shutdown()

    provider, exporter, tracer_ = _ratio_tracer(monkeypatch, "1", "tests.skipped.kept")
    instrumented = ChildrenSkipped(provider).get_tracer("tests.skipped.redis.kept", "1.0")
    with span(tracer_, "root") as root:
        with instrumented.start_as_current_span("GET", kind=SpanKind.CLIENT) as child:
            assert child is not root and child.is_recording()
        instrumented.start_span("SELECT", kind=SpanKind.CLIENT).end()
    provider.force_flush()
    done = {s.name: s for s in exporter.get_finished_spans()}
    assert set(done) == {"root", "GET", "SELECT"}
    for name in ("GET", "SELECT"):
        parent = done[name].parent
        assert parent is not None and parent.span_id == done["root"].context.span_id
    provider.shutdown()

    always = TracerProvider(sampler=ALWAYS_ON)
    assert not isinstance(
        ChildrenSkipped(always).get_tracer("tests.skipped.always"),
        spans_module.ChildrenSkippedTracer,
    )
    always.shutdown()


async def test_sql_is_traced_without_the_instrumentors_pool_listeners(services: Services) -> None:
    """Tracing adds no listener to the connection pool (the instrumentor's connection-usage
    metric, which nothing reads, would run on every pooled read) and still traces SQL; after
    `uninstall` the pool's and the engine's listeners are as before."""
    from sqlalchemy import text

    engine = services.engine.sync_engine
    events = ("connect", "close", "checkout", "checkin")

    def listeners() -> list[int]:
        return [len(list(getattr(engine.pool.dispatch, name))) for name in events]

    before = listeners()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, services, make_global=False)
    try:
        assert listeners() == before
        with spans_module.span(spans_module.tracer("tests.sql"), "root"):
            async with services.engine.connect() as conn:
                await conn.execute(text("select 1"))
    finally:
        tracing.uninstall()
        provider.shutdown()
    assert listeners() == before
    assert len(list(engine.dispatch.before_cursor_execute)) == 0
    names = [s.name for s in exporter.get_finished_spans()]
    assert "root" in names and any(n.startswith("SELECT") or n == "select" for n in names), names
