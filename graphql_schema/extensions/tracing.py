"""One span and one latency sample per GraphQL operation (never per field: CONVENTIONS 8).

Attributes name the operation and a hash of its document; never variables or ids."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

from opentelemetry.trace import Status, StatusCode
from strawberry.extensions import SchemaExtension

from app.observability import metrics, spans
from app.observability.logging import note_request


class OperationTelemetry(SchemaExtension):
    def __init__(self, names: metrics.OperationNames) -> None:
        self.names = names

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        started = time.perf_counter()
        with spans.span(spans.tracer("bookbridge.graphql"), "graphql.operation") as span:
            yield
            label = self.names.label(ec.operation_name)
            note_request(operation=label)
            try:
                kind = ec.operation_type.value
            except RuntimeError:  # the document did not parse
                kind = "unknown"
            errors = ec.result.errors if ec.result is not None else None
            if span.is_recording():
                span.update_name(f"graphql.{kind} {label}")
                span.set_attribute("graphql.operation.name", label)
                span.set_attribute("graphql.operation.type", kind)
                if ec.query:
                    digest = hashlib.sha256(ec.query.encode()).hexdigest()
                    span.set_attribute("graphql.document.sha256", digest)
                if errors:
                    span.set_status(Status(StatusCode.ERROR))
                    span.set_attribute("graphql.error.count", len(errors))
            for error in errors or ():
                code = str((error.extensions or {}).get("code", "UNKNOWN"))
                metrics.OPERATION_ERRORS.labels(label, code).inc()
            metrics.OPERATION_LATENCY.labels(label, kind).observe(time.perf_counter() - started)
