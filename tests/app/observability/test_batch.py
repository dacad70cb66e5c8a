"""Our batch span processor (app/observability/batch.py) against a real OTLP/HTTP receiver:
the SDK BatchSpanProcessor's settings and defaults, a full batch exported at once, the schedule
delay, the oldest spans dropped (counted and logged) when the queue is full, force_flush,
shutdown, a forked child; our lean spans handed over as they are and encoded as the SDK's
encoder encodes their `ReadableSpan`; any other processor still given the SDK's ReadableSpan."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from prometheus_client import REGISTRY

from app.observability import batch, export, otlp, spans, tracing
from app.observability.recording import Recording
from tests.http_helpers import serving


class Receiver:
    """A local OTLP/HTTP endpoint: the span names of each request it received, in order;
    while `hold` is clear it answers nothing (an exporter stuck in its POST)."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Condition()

    def names(self) -> list[str]:
        return [name for request in self.requests for name in request]

    def wait_for(self, count: int, seconds: float = 5.0) -> bool:
        """True once `count` spans arrived, False after `seconds`."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.names()) >= count, seconds)


@contextmanager
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            found.hold.wait(10)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            names = [
                s.name
                for r in request.resource_spans
                for scope in r.scope_spans
                for s in scope.spans
            ]
            with found.arrived:
                found.requests.append(names)
                found.arrived.notify_all()
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler) as url:
        try:
            yield found, url
        finally:
            found.hold.set()  # before the server waits for its handlers


def _provider(
    url: str, monkeypatch: pytest.MonkeyPatch, **bsp: str
) -> tuple[tracing.TracerProvider, batch.BatchProcessor, spans.Tracer]:
    """A provider as `make_provider` builds it (every root sampled: our lean spans), exporting
    to `url`, with OTEL_BSP_* `bsp` set in the environment as an operator sets them."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.9999999")
    for name, value in bsp.items():
        monkeypatch.setenv(f"OTEL_BSP_{name.upper()}", value)
    provider = tracing.make_provider({"OTEL_EXPORTER_OTLP_ENDPOINT": url})
    assert provider is not None
    (processor,) = provider.ours  # type: ignore[attr-defined]
    tracer_ = spans.tracer("tests.batch", provider)
    assert tracer_ is not None
    return provider, processor, tracer_


def _end(tracer_: spans.Tracer, *names: str) -> None:
    for name in names:
        with spans.span(tracer_, name) as found:
            assert isinstance(found, Recording)


def test_the_sdk_settings_and_their_defaults() -> None:
    exporter = InMemorySpanExporter()
    default = batch.BatchProcessor(exporter, env={})
    assert (default.max_queue_size, default.schedule_delay) == (2048, 5.0)
    assert (default.max_export_batch_size, default.export_timeout) == (512, 30.0)
    given = {
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "OTEL_BSP_SCHEDULE_DELAY": "250",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
        "OTEL_BSP_EXPORT_TIMEOUT": "2000",
    }
    configured = batch.BatchProcessor(exporter, env=given)
    assert (configured.max_queue_size, configured.schedule_delay) == (100, 0.25)
    assert (configured.max_export_batch_size, configured.export_timeout) == (10, 2.0)
    assert batch.BatchProcessor(exporter, env={"OTEL_BSP_MAX_QUEUE_SIZE": "x"}).max_queue_size == (
        2048
    )
    for wrong in (
        {"max_queue_size": 0},
        {"schedule_delay_millis": 0},
        {"max_export_batch_size": 0},
        {"max_queue_size": 10, "max_export_batch_size": 11},
    ):
        with pytest.raises(ValueError):
            batch.BatchProcessor(exporter, env={}, **wrong)  # type: ignore[arg-type]
    for processor in (default, configured):
        processor.shutdown()


def test_a_full_batch_is_exported_at_once_and_the_rest_after_the_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with receiver() as (got, url):
        provider, processor, tracer_ = _provider(
            url, monkeypatch, max_export_batch_size="3", schedule_delay="60000"
        )
        started = time.monotonic()
        _end(tracer_, "a", "b", "c", "d")
        assert got.wait_for(3), "a full batch waits for nothing"
        assert time.monotonic() - started < 5
        assert got.requests == [["a", "b", "c"]]
        assert [s.name for s in processor.queue] == ["d"]
        provider.shutdown()
    with receiver() as (got, url):
        provider, processor, tracer_ = _provider(url, monkeypatch, schedule_delay="100")
        _end(tracer_, "e")
        assert got.wait_for(1, 3), "sent after the schedule delay"
        assert got.requests == [["e"]]
        provider.shutdown()


def test_a_full_queue_drops_the_oldest_spans_counts_and_logs_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dropped = REGISTRY.get_sample_value("bookbridge_spans_dropped_total", {"reason": "queue_full"})
    with receiver() as (got, url):
        got.hold.clear()  # the collector answers nothing yet: the export thread waits in its POST
        provider, processor, tracer_ = _provider(
            url, monkeypatch, max_queue_size="4", max_export_batch_size="2", schedule_delay="60000"
        )
        _end(tracer_, "s0", "s1")  # a full batch: taken by the thread, stuck in the POST
        deadline = time.monotonic() + 5
        while processor.queue and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not processor.queue
        with caplog.at_level(logging.WARNING, logger="app.observability.batch"):
            _end(tracer_, "s2", "s3", "s4", "s5", "s6", "s7")
        assert processor.dropped == 2
        after = REGISTRY.get_sample_value(
            "bookbridge_spans_dropped_total", {"reason": "queue_full"}
        )
        assert (after or 0) - (dropped or 0) == 2
        assert "Span queue full (4)" in caplog.text
        got.hold.set()
        assert processor.force_flush()
        provider.shutdown()
    assert sorted(got.names()) == ["s0", "s1", "s4", "s5", "s6", "s7"]  # s2, s3: the oldest


def test_force_flush_exports_everything_queued_and_shutdown_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with receiver() as (got, url):
        provider, processor, tracer_ = _provider(url, monkeypatch, schedule_delay="60000")
        _end(tracer_, "a", "b", "c")
        assert got.requests == []
        assert provider.force_flush()
        assert got.requests == [["a", "b", "c"]]
        _end(tracer_, "d")
        provider.shutdown()  # exports what was queued before returning
        assert got.requests == [["a", "b", "c"], ["d"]]
        before = processor.dropped
        _end(tracer_, "late")  # after shutdown: dropped, counted
        assert processor.dropped == before + 1
        assert not processor.force_flush()
        assert got.names() == ["a", "b", "c", "d"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_exports_its_own_spans_with_a_thread_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with receiver() as (got, url):
        provider, processor, tracer_ = _provider(url, monkeypatch, schedule_delay="60000")
        _end(tracer_, "before fork")  # queued in the parent, not yet sent
        pid = os.fork()
        if pid == 0:  # the child: a fresh queue and thread; its spans are sent by it
            code = 1
            try:
                ok = not processor.queue and processor.thread.is_alive()
                _end(tracer_, "in child")
                provider.shutdown()
                code = 0 if ok else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert got.names() == ["in child"]  # the parent's queued span is not the child's
        _end(tracer_, "in parent")
        provider.shutdown()
    assert sorted(got.names()) == ["before fork", "in child", "in parent"]


class Keeping(SpanExporter):
    """An exporter that reads our spans as they are (as `export.OTLPExporter` does), keeping
    what it gets."""

    reads_recordings = True

    def __init__(self) -> None:
        self.got: list[Any] = []

    def export(self, spans_: Sequence[ReadableSpan]) -> SpanExportResult:
        self.got.extend(spans_)
        return SpanExportResult.SUCCESS


def _every_shape(tracer_: spans.Tracer) -> None:
    """Spans of the shapes our code makes and a few it may: attributes of each kind, events,
    an exception, statuses, a link, a caller's trace state, a rename, kinds."""
    with spans.span(tracer_, "POST /graphql", {"http.route": "/graphql"}, SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 200)
        root.set_attributes({"ids": [1, 2], "ratio": 0.5, "ok": True, "tags": ("a", "é")})
        root.set_attribute("big", 2**63 - 1)
        root.set_attribute("neg", -5)
        root.add_event("checkpoint", {"step": 1})
        root.add_link(SpanContext(0x1234, 0x5678, True, TraceFlags(1)), {"l": "x"})
        with pytest.raises(ValueError), spans.span(tracer_, "graphql.compiled_read"):
            raise ValueError("boom")
        with spans.span(tracer_, "graphql.operation") as op:
            op.update_name("graphql.query Book")
            op.set_status(Status(StatusCode.OK))
            with spans.span(tracer_, "db.driver_read", kind=SpanKind.CLIENT) as read:
                read.set_attribute("db.statement", "select 1")
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        with spans.span(tracer_, f"root {kind.name}", kind=kind):
            pass


@pytest.mark.parametrize("limits", [{}, {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "3"}])
def test_lean_spans_are_handed_over_as_they_are_and_encoded_as_the_sdk_encodes_them(
    monkeypatch: pytest.MonkeyPatch, limits: dict[str, str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.9999999")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "6")  # the root has more: some dropped
    for name, value in limits.items():
        monkeypatch.setenv(name, value)
    kept = Keeping()
    provider = tracing.make_provider({"OTEL_TRACES_EXPORTER": "otlp"}, kept)
    assert provider is not None
    memory = InMemorySpanExporter()  # another processor: the SDK's ReadableSpan, as before
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer_ = spans.tracer("tests.batch.shapes", provider)
    assert tracer_ is not None
    _every_shape(tracer_)
    provider.shutdown()
    assert len(kept.got) == 6
    assert all(type(s) is Recording for s in kept.got)  # no ReadableSpan built for ours
    sdk = memory.get_finished_spans()
    assert all(type(s) is ReadableSpan for s in sdk)
    assert [s.name for s in sdk] == [s.name for s in kept.got]
    readable = [s.readable() for s in kept.got]
    assert any(s.dropped_attributes for s in readable)
    expected = encode_spans(readable).SerializeToString()  # the SDK's encoder
    assert otlp.encode(kept.got) == expected
    assert otlp.encode(sdk) == expected  # what the other processor got is the same span
    assert otlp.encode(kept.got) == expected  # again, from the encoded pairs' cache


def test_an_exporter_that_does_not_read_our_spans_gets_readable_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.9999999")
    assert export.OTLPExporter({}).reads_recordings  # the one that does
    memory = InMemorySpanExporter()
    provider = tracing.make_provider({"OTEL_TRACES_EXPORTER": "otlp"}, memory)
    assert provider is not None
    (processor,) = provider.ours  # type: ignore[attr-defined]
    assert not processor.reads_recordings
    tracer_ = spans.tracer("tests.batch.readable", provider)
    assert tracer_ is not None
    _end(tracer_, "x")
    assert type(processor.queue[0]) is Recording  # queued as it is, made readable on export
    provider.shutdown()
    (found,) = memory.get_finished_spans()
    assert type(found) is ReadableSpan and found.name == "x"
