"""ASGI middleware: a server span per request continuing the caller's W3C traceparent, HTTP
metrics, and one access-log line (with the trace id)."""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics, spans
from app.observability.logging import request_fields

ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})
access = logging.getLogger("bookbridge.access")


_fields: tuple[object, frozenset[bytes]] = (None, frozenset())
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def caller_context(headers: list[tuple[bytes, bytes]]) -> Context | None:
    """The caller's trace context (W3C traceparent, or what OTEL_PROPAGATORS names), or None
    when the request carries none of the propagators' headers (no carrier built then)."""
    global _fields  # noqa: PLW0603 - the header names of the current propagator, kept
    textmap = propagate.get_global_textmap()
    if _fields[0] is not textmap:
        _fields = (textmap, frozenset(f.encode("latin-1") for f in textmap.fields))
    names = _fields[1]
    for key, _ in headers:
        if key in names:
            return propagate.extract({k.decode("latin-1"): v.decode("latin-1") for k, v in headers})
    return None


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with spans.pinned():  # the global tracer provider, looked up once per request
            tracer = spans.tracer("bookbridge.http")
            with (
                request_fields() as fields,
                spans.span(None, "")  # tracing off: no name, attributes or caller's context
                if tracer is None
                else spans.span(
                    tracer,
                    f"{method} {route}",
                    {"http.request.method": method, "http.route": route},
                    SpanKind.SERVER,
                    caller_context(scope["headers"]),
                    quiet=True,  # sampled out here: no span object or context switch (spans.py)
                ) as span,
            ):
                try:
                    await self.app(scope, receive, send_status)
                finally:
                    elapsed = time.perf_counter() - started
                    span.set_attribute("http.response.status_code", status)
                    counted = _children.get((method, route, status))
                    if counted is None:  # the labelled children, looked up once
                        counted = _children[(method, route, status)] = (
                            metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                            metrics.HTTP_LATENCY.labels(route),
                        )
                    counted[0].inc()
                    counted[1].observe(elapsed)
                    if route not in ("/healthz", "/metrics") and access.isEnabledFor(logging.INFO):
                        access.info(
                            "%s %s %d",
                            method,
                            route,
                            status,
                            extra={
                                "method": method,
                                "path": scope["path"][:200],
                                "status": status,
                                "duration_ms": round(elapsed * 1000, 2),
                                **fields,  # operation (GraphQL), when known
                            },
                        )
