"""Our lean sampled spans reach the processors as the SDK's own spans would."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags

from app.observability import spans, tracing
from app.observability.recording import Recording


def _work(tracer_: spans.Tracer) -> None:
    """Every span call our code makes, and a few it may: attributes of each kind (a list kept
    as a tuple, a None), events, an escaping exception, statuses, a rename."""
    with spans.span(tracer_, "POST /graphql", {"http.route": "/graphql"}, SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 200)
        root.set_attribute("ids", [1, 2])
        root.set_attribute("none", None)
        root.set_attributes({"ratio": 0.5, "ok": True})
        root.add_event("checkpoint", {"step": 1})
        with pytest.raises(ValueError), spans.span(tracer_, "graphql.compiled_read"):
            raise ValueError("boom")
        with spans.span(tracer_, "graphql.operation") as op:
            op.update_name("graphql.query Book")
            op.set_status(StatusCode.OK)
            op.set_status(StatusCode.ERROR, "ignored")  # OK is final
            with spans.span(tracer_, "db.driver_read", kind=SpanKind.CLIENT) as read:
                read.set_attribute("db.statement", "select 1")
    root.set_attribute("after", "end")  # ignored: ended


def _comparable(found: ReadableSpan) -> tuple[object, ...]:
    return (
        found.name,
        found.kind,
        dict(found.attributes or {}),
        [(e.name, dict(e.attributes or {})) for e in found.events],
        (found.status.status_code, found.status.description),
        found.instrumentation_scope,
        found.resource.attributes.get("service.name"),
        found.dropped_attributes,
        found.context.trace_flags,
        found.parent is None,
    )


def test_lean_spans_carry_what_the_sdk_spans_carry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.9999999")  # decided here: lean roots
    lean_memory = InMemorySpanExporter()
    lean_provider = tracing.make_provider({"OTEL_TRACES_EXPORTER": "otlp"}, lean_memory)
    assert lean_provider is not None
    sdk_memory = InMemorySpanExporter()
    sdk_provider = TracerProvider(resource=lean_provider.resource, sampler=lean_provider.sampler)
    sdk_provider.add_span_processor(SimpleSpanProcessor(sdk_memory))
    lean_tracer = spans.tracer("tests.lean", lean_provider)
    sdk_tracer = spans.tracer("tests.lean", sdk_provider)
    assert lean_tracer is not None and sdk_tracer is not None
    with spans.span(lean_tracer, "probe") as probe:
        assert isinstance(probe, Recording)  # the lean path is the one under test
        assert trace.get_current_span() is probe
    _work(lean_tracer)
    _work(sdk_tracer)
    lean_provider.shutdown()
    sdk_provider.shutdown()
    probe_done, *lean = lean_memory.get_finished_spans()
    sdk = sdk_memory.get_finished_spans()
    assert probe_done.name == "probe"
    assert [_comparable(s) for s in lean] == [_comparable(s) for s in sdk]
    assert len(lean) == 4
    by_name = {s.name: s for s in lean}
    root = by_name["POST /graphql"]
    assert dict(root.attributes or {})["ids"] == (1, 2)
    failed = by_name["graphql.compiled_read"]
    assert failed.status.description == "ValueError: boom"
    assert dict(failed.events[0].attributes or {})["exception.type"] == "ValueError"
    for child in ("graphql.compiled_read", "graphql.query Book"):
        parent = by_name[child].parent
        assert parent is not None and parent.span_id == root.context.span_id
    read = by_name["db.driver_read"].parent
    assert read is not None and read.span_id == by_name["graphql.query Book"].context.span_id
    assert len({s.context.trace_id for s in lean}) == 1
    assert len({s.context.span_id for s in lean}) == 4


def test_a_sampled_out_request_drops_its_children_until_a_sampled_trace_is_joined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a sampled-out root, our children and the instrumentors' spans are that root (no
    span of their own); a span joining a sampled caller's trace inside it records, and so do
    its children; after each block the context is as it was."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    memory = InMemorySpanExporter()
    provider = tracing.make_provider({"OTEL_TRACES_EXPORTER": "otlp"}, memory)
    assert provider is not None
    tracer_ = spans.tracer("tests.dropped", provider)
    assert tracer_ is not None
    instrumentor = spans.ChildrenSkipped(provider).get_tracer("tests.sql")
    caller = SpanContext(0xABC, 0xDEF, True, TraceFlags(TraceFlags.SAMPLED))
    with spans.span(tracer_, "root") as root:
        assert not root.is_recording()
        with spans.span(tracer_, "child") as child:
            assert child is root and trace.get_current_span() is root
        assert instrumentor.start_span("SELECT") is root
        with spans.span(
            tracer_, "joined", context=trace.set_span_in_context(NonRecordingSpan(caller))
        ) as joined:
            assert joined.is_recording() and trace.get_current_span() is joined
            with spans.span(tracer_, "inner") as inner:
                assert inner.is_recording()
            sql = instrumentor.start_span("SELECT")
            assert sql.is_recording()
            sql.end()
        with spans.span(tracer_, "after") as after:
            assert after is root
    assert trace.get_current_span() is trace.INVALID_SPAN
    with spans.span(tracer_, "next") as fresh:
        assert fresh is not root and not fresh.is_recording()
        assert fresh.get_span_context().trace_id != root.get_span_context().trace_id
    provider.shutdown()
    finished = {s.name: s for s in memory.get_finished_spans()}
    assert set(finished) == {"joined", "inner", "SELECT"}
    assert {s.context.trace_id for s in finished.values()} == {0xABC}
    inner_parent = finished["inner"].parent
    assert inner_parent is not None and inner_parent.span_id == finished["joined"].context.span_id
