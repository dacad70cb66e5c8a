"""A database that cannot be reached answers HTTP 503 with Retry-After, never a 200 or a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

UNAVAILABLE = "SERVICE_UNAVAILABLE"


class ServiceUnavailableStatus(SchemaExtension):
    """After `Schema.process_errors` coded transient database failures SERVICE_UNAVAILABLE:
    if any error of the result has that code, the HTTP status is 503 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after

    def on_operation(self) -> Iterator[None]:
        yield
        mark_unavailable(self.execution_context, self.retry_after)


def mark_unavailable(context: ExecutionContext, retry_after: int) -> None:
    """503 with Retry-After when the complete result has a SERVICE_UNAVAILABLE error
    (OperationTelemetry runs it as one of its `finish` steps: one hook fewer per request)."""
    errors = context.result.errors if context.result is not None else None
    errors = errors or context.pre_execution_errors or []
    if not any((e.extensions or {}).get("code") == UNAVAILABLE for e in errors):
        return
    response: Any = getattr(context.context, "response", None)
    if response is not None:
        response.status_code = 503
        response.headers["Retry-After"] = str(retry_after)
