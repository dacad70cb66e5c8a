"""ASGI middleware: a server span per request continuing the caller's W3C traceparent, HTTP
metrics, and one access-log line (with the trace id)."""

from __future__ import annotations

import logging
import time

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookbridge.app.observability import metrics

ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})
tracer = trace.get_tracer("bookbridge.http")
access = logging.getLogger("bookbridge.access")


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        route = scope["path"] if scope["path"] in ROUTES else "other"
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                elapsed = time.perf_counter() - started
                span.set_attribute("http.response.status_code", status)
                metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
                metrics.HTTP_LATENCY.labels(route).observe(elapsed)
                if route not in ("/healthz", "/metrics"):
                    access.info(
                        "%s %s %d",
                        method,
                        route,
                        status,
                        extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
                    )
