"""W3C trace context for sync requests: OpenTelemetry's propagator when a tracer is configured."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from opentelemetry import propagate, trace


def _configured(provider: trace.TracerProvider) -> bool:
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


class TraceContext:
    """One trace per sync run; every request gets its own parent id under it. With a real
    tracer provider (given, or the global one) each request is a client span, propagated."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self.provider = provider
        self.trace_id = secrets.token_hex(16)

    @contextlib.contextmanager
    def request(self, name: str, **attributes: str | int) -> Iterator[dict[str, str]]:
        """Headers carrying `traceparent` for one request (inside a client span when traced)."""
        provider = self.provider or trace.get_tracer_provider()
        if _configured(provider):
            tracer = provider.get_tracer("app.sync")
            with tracer.start_as_current_span(
                name, kind=trace.SpanKind.CLIENT, attributes=attributes
            ):
                headers: dict[str, str] = {}
                propagate.inject(headers)
                if "traceparent" in headers:
                    yield headers
                    return
        yield {"traceparent": f"00-{self.trace_id}-{secrets.token_hex(8)}-01"}
