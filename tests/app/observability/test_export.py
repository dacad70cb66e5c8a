"""The OTLP encoder and exporter tracing uses: the SDK encoder's bytes, the OTEL_EXPORTER_OTLP_*
configuration, retries, and what a collector receives."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import AttributeValue

from app.observability import export, otlp, spans, tracing
from tests.http_helpers import serving


def _finished() -> tuple[ReadableSpan, ...]:
    """Spans of every shape the encoder handles: remote parent with trace state, links, events,
    an exception, statuses, every attribute type, two scopes, every kind."""
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "tests"}, schema_url="https://schema/r")
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    ours = provider.get_tracer("tests.export")
    other = provider.get_tracer("tests.other", "1.2", schema_url="https://s", attributes={"a": 1})
    state = TraceState([("k", "v"), ("z", "w")])
    remote = SpanContext(0x1234, 0x5678, True, TraceFlags(1), state)
    caller = trace.set_span_in_context(NonRecordingSpan(remote))
    attributes: dict[str, AttributeValue] = {"http.request.method": "POST", "neg": -5, "f": 1.5}
    attributes["yes"] = True
    with ours.start_as_current_span(
        "POST /graphql", caller, SpanKind.SERVER, attributes, [Link(remote, {"l": "x"})]
    ) as root:
        root.set_attribute("ids", [1, 2])
        root.set_attribute("tags", ("a", "é"))
        root.set_attribute("big", 2**63 - 1)
        with other.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            try:
                raise ValueError("boom")
            except ValueError as exc:
                child.record_exception(exc)
                child.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
        with ours.start_as_current_span("ok") as done:
            done.set_status(Status(StatusCode.OK))
            done.add_event("checkpoint", {"step": 1})
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
        with ours.start_as_current_span(f"root {kind.name}", kind=kind):
            pass
    return memory.get_finished_spans()


def test_the_encoder_sends_what_the_sdk_encoder_sends() -> None:
    finished = _finished()
    assert otlp.encode(finished) == encode_spans(finished).SerializeToString()
    # twice: the second time from the cache of encoded attribute pairs
    assert otlp.encode(finished) == encode_spans(finished).SerializeToString()
    assert otlp.encode([]) == b""


@dataclass
class Collector:
    """A local OTLP/HTTP endpoint recording what it receives; `statuses` are answered first."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def collector(found: Collector) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            found.received.append(
                (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = found.statuses.pop(0) if found.statuses else 200
            self.send_response(status)
            if status == 503:
                self.send_header("retry-after", "0")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def _decoded(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def test_the_endpoint_headers_timeout_and_compression_follow_the_otel_variables() -> None:
    assert export.endpoint({}) == "http://localhost:4318/v1/traces"
    assert export.endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == (
        "http://c:4318/v1/traces"
    )
    given = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom",
    }
    assert export.endpoint(given) == "http://t:1/custom"  # the signal's URL as given
    assert export.timeout({}) == 10.0
    assert (
        export.timeout(
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "3", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2"}
        )
        == 2.0
    )
    assert export.compression({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}) == "gzip"
    assert export.compression({"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none"}) == ""
    sent = export.headers({"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%20ecret,x-tenant=a"})
    assert sent["api-key"] == "s ecret" and sent["x-tenant"] == "a"
    assert sent["content-type"] == "application/x-protobuf"


def test_a_provider_exports_to_the_collector_gzipped_and_flushes_on_shutdown() -> None:
    received = Collector()
    with collector(received) as url:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
        provider = tracing.make_provider(env)
        assert provider is not None
        tracer_ = spans.tracer("tests.collector", provider)
        with spans.span(tracer_, "root", {"k": "v"}, SpanKind.SERVER), spans.span(tracer_, "child"):
            pass
        provider.shutdown()  # the batch processor's queue is sent before it returns
    (path, headers, body), *rest = received.received
    assert not rest
    assert path == "/v1/traces"
    assert headers["content-encoding"] == "gzip" and headers["authorization"] == "Bearer t"
    request = _decoded(gzip.decompress(body))
    (resource_spans,) = request.resource_spans
    assert {a.key: a.value.string_value for a in resource_spans.resource.attributes}[
        "service.name"
    ] == "bookbridge"
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "tests.collector"
    child, root = scope_spans.spans
    assert (root.name, child.name) == ("root", "child")
    assert root.kind == root.SpanKind.SPAN_KIND_SERVER
    assert [(a.key, a.value.string_value) for a in root.attributes] == [("k", "v")]
    assert child.parent_span_id == root.span_id and child.trace_id == root.trace_id
    assert not root.parent_span_id


def test_transient_failures_are_retried_and_others_are_not() -> None:
    finished = _finished()
    received = Collector(statuses=[503, 502, 200])
    with collector(received) as url:
        exporter = export.OTLPExporter({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url + "/v1/traces"})
        assert exporter.export(finished) is SpanExportResult.SUCCESS
        assert len(received.received) == 3
        assert {body for _, _, body in received.received} == {otlp.encode(finished)}
        received.statuses.append(400)
        assert exporter.export(finished) is SpanExportResult.FAILURE
        assert len(received.received) == 4  # a 400 is not sent again
        exporter.shutdown()
        assert exporter.export(finished) is SpanExportResult.FAILURE
        assert len(received.received) == 4


def test_an_unreachable_collector_fails_the_batch_within_the_timeout() -> None:
    exporter = export.OTLPExporter(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_TIMEOUT": "0.5"}
    )
    assert exporter.export(_finished()) is SpanExportResult.FAILURE
    exporter.shutdown()


def test_a_value_the_encoder_refuses_fails_its_batch_without_sending() -> None:
    context = _finished()[0].context
    odd = ReadableSpan("odd", context, attributes={"v": object()})  # type: ignore[dict-item]
    received = Collector()
    with collector(received) as url:
        exporter = export.OTLPExporter({"OTEL_EXPORTER_OTLP_ENDPOINT": url})
        assert exporter.export([odd]) is SpanExportResult.FAILURE
        exporter.shutdown()
    assert received.received == []


def test_the_environments_proxies_are_resolved_once_for_the_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "collector.internal")
    through = export.OTLPExporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c.example:4318"})
    assert through.session.proxies.get("http") == "http://proxy.example:3128"
    direct = export.OTLPExporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.internal"})
    assert not direct.session.proxies.get("http")  # NO_PROXY, as requests decides it
    assert not through.session.trust_env  # not read again on every POST
    for exporter in (through, direct):
        exporter.shutdown()
