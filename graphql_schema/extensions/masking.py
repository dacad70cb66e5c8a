"""Masks unexpected errors (production): the client gets an error id that the logs also carry."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

INTERNAL = "INTERNAL_SERVER_ERROR"


class MaskUnexpectedErrors(SchemaExtension):
    """Client, validation and limit errors keep their message; anything else becomes generic.

    Schema.process_errors (which runs first) logs each unexpected error with its errorId.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        mask_unexpected_errors(self.execution_context)


def mask_unexpected_errors(context: ExecutionContext) -> None:
    """The masking of an operation's result, once it is complete (OperationTelemetry runs it
    as one of its `finish` steps: one hook fewer per request)."""
    result = context.result
    if result is None or not result.errors:
        return
    result.errors = [_masked(e) if _unexpected(e) else e for e in result.errors]


def _unexpected(error: GraphQLError) -> bool:
    return (error.extensions or {}).get("code") == INTERNAL


def _masked(error: GraphQLError) -> GraphQLError:
    error_id = (error.extensions or {}).get("errorId")
    return GraphQLError(
        f"Internal server error (error id {error_id})",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": INTERNAL, "errorId": error_id},
    )
