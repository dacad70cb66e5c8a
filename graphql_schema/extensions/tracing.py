"""One span and one latency sample per GraphQL operation (never per field: CONVENTIONS 8).

Attributes name the operation and a hash of its document; never variables or ids."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from graphql import GraphQLError
from opentelemetry.trace import Span, Status, StatusCode
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from app.observability import metrics, spans
from app.observability.logging import note_request
from graphql_schema.extensions.limits import BEGUN

Finish = Callable[[ExecutionContext], None]
# OPERATION_LATENCY's children per (operation label, kind): labels are bounded by
# OperationNames, so this stays as small as the metric itself
_latency: dict[tuple[str, str], Any] = {}


class OperationTelemetry(SchemaExtension):
    """`finish` steps run in order once the operation is complete, inside its span and before
    its metrics (build_schema: the 503 status, then masking). They were `on_operation` hooks of
    extensions of their own, nested inside this one, so they ran at the same point; Strawberry
    wraps and enters every hook of every extension on each request, so fewer is cheaper."""

    def __init__(self, names: metrics.OperationNames, finish: Sequence[Finish] = ()) -> None:
        self.names = names
        self.finish = tuple(finish)

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        begun = BEGUN.get()
        if begun is not None:  # the fast path's operation, handed over: its span, its clock
            yield
            self._complete(ec, begun.span, begun.started)
            return
        started = time.perf_counter()
        with spans.span(spans.tracer("bookbridge.graphql"), "graphql.operation") as span:
            yield
            self._complete(ec, span, started)

    def _complete(self, ec: ExecutionContext, span: Span, started: float) -> None:
        for step in self.finish:
            step(ec)
        try:
            kind = ec.operation_type.value
        except RuntimeError:  # the document did not parse
            kind = "unknown"
        errors = ec.result.errors if ec.result is not None else None
        complete(self.names, span, ec.operation_name, kind, ec.query, errors, started)


def complete(
    names: metrics.OperationNames,
    span: Span,
    operation_name: str | None,
    kind: str,
    query: str | None,
    errors: Sequence[GraphQLError] | None,
    started: float,
) -> None:
    """What every operation leaves once complete: its access-log name, its span's name and
    attributes (when recorded), its error and latency metrics."""
    label = names.label(operation_name)
    note_request(operation=label)
    if span.is_recording():
        span.update_name(f"graphql.{kind} {label}")
        span.set_attribute("graphql.operation.name", label)
        span.set_attribute("graphql.operation.type", kind)
        if query:
            digest = hashlib.sha256(query.encode()).hexdigest()
            span.set_attribute("graphql.document.sha256", digest)
        if errors:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("graphql.error.count", len(errors))
    for error in errors or ():
        code = str((error.extensions or {}).get("code", "UNKNOWN"))
        metrics.OPERATION_ERRORS.labels(label, code).inc()
    latency = _latency.get((label, kind))
    if latency is None:  # the labelled child, looked up once (the metric keeps it for good)
        latency = _latency[(label, kind)] = metrics.OPERATION_LATENCY.labels(label, kind)
    latency.observe(time.perf_counter() - started)
