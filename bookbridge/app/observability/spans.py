"""Spans at the cost of what they record: nothing when tracing is off, little when unsampled.

`Tracer.start_as_current_span` nests three generator context managers (the global proxy's,
the SDK tracer's and `use_span`), and `TracerProvider.get_tracer` builds a new tracer on every
call. On a response-cache hit (about 0.3 ms of work) that was most of the measured cost of
tracing at a 0.1 sampling ratio (`python -m bench --tracing`, docs/performance.md). `span()`
starts the span and makes it current with one small class instead, and tracers are looked up
once per provider."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode

_tracers: dict[str, tuple[trace.TracerProvider, trace.Tracer | None]] = {}


def tracer(scope: str, provider: trace.TracerProvider | None = None) -> trace.Tracer | None:
    """The tracer of `scope` from `provider` (default: the global one); None while tracing is
    off (no SDK provider set), so callers can skip span work entirely."""
    provider = provider or trace.get_tracer_provider()
    hit = _tracers.get(scope)
    if hit is not None and hit[0] is provider:
        return hit[1]
    found = None if isinstance(provider, ProxyTracerProvider) else provider.get_tracer(scope)
    if isinstance(found, trace.NoOpTracer):
        found = None
    _tracers[scope] = (provider, found)
    return found


class span:  # used like a function: `with span(tracer, "name"):`
    """Start a span and make it current for the `with` block; records an escaping exception."""

    __slots__ = ("_span", "_token")

    def __init__(
        self,
        tracer: trace.Tracer | None,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
    ) -> None:
        self._token: object | None = None
        self._span: trace.Span = (
            trace.INVALID_SPAN
            if tracer is None
            else tracer.start_span(name, context=context, kind=kind, attributes=attributes)
        )

    def __enter__(self) -> trace.Span:
        if self._span is not trace.INVALID_SPAN:
            # also when unsampled: children then see a sampled-out parent and stay out too
            self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        current = self._span
        if exc is not None and current.is_recording():
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, f"{typ.__name__ if typ else ''}: {exc}"))
        current.end()
        context_api.detach(self._token)  # type: ignore[arg-type]
