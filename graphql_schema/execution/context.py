"""graphql-core's execution context: compiled variable coercion, and no reference cycle.

Variables: `build` (graphql-core's public classmethod that turns a request into an executor)
first tries the compiled coercion of `graphql_schema.execution.variables`. When every variable
coerces, graphql-core builds the executor for the operation without its variable definitions
(so it coerces nothing a second time) and the executor gets the original operation and the
compiled values back; otherwise graphql-core's own `build` does all of it, errors included.

Cycle: graphql-core stores `GraphQLResolveInfoHelpers(gather=self.gather_async_work, ...)` on
the context: bound methods of the context held by the context. Everything a request's execution
references (variables, the request context, its loaders and their cached rows) was therefore
freed only by the cyclic garbage collector, never by reference counting: about 190 objects per
recommendation request, freed in collector pauses of 4-7 ms every few dozen requests
(measured with gc.DEBUG_SAVEALL and DEBUG_STATS; docs/performance.md). The helpers here reach
the context through a weak reference instead; they are only used while the execution (which
holds the context) runs.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfoHelpers,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_schema.execution.variables import compiled_variable_values


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    """The operation `build` will run, or None when graphql-core must say why there is none."""
    found = None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if name is None:
                if found is not None:
                    return None  # several operations and no name: graphql-core's error
                found = definition
            elif definition.name and definition.name.value == name:
                found = definition
    return found


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    @classmethod
    def build(  # the same parameters as graphql-core's, passed through as given
        cls,
        schema: GraphQLSchema,
        document: DocumentNode,
        root_value: Any = None,
        context_value: Any = None,
        raw_variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[GraphQLError] | Executor[Any]:
        operation = _operation(document, operation_name)
        compiled = None
        if operation is not None and operation.variable_definitions:
            compiled = compiled_variable_values(
                schema, operation.variable_definitions, raw_variable_values or {}
            )
        if operation is None or compiled is None:
            return super().build(
                schema,
                document,
                root_value,
                context_value,
                raw_variable_values,
                operation_name,
                *args,
                **kwargs,
            )
        bare = dataclasses.replace(operation, variable_definitions=())
        definitions = tuple(bare if d is operation else d for d in document.definitions)
        built = super().build(
            schema,
            dataclasses.replace(document, definitions=definitions),
            root_value,
            context_value,
            None,
            operation_name,
            *args,
            **kwargs,
        )
        if not isinstance(built, list):
            built.operation = operation
            built.variable_values = compiled
        return built

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ref = weakref.ref(self)

        def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
            context = ref()
            if context is None:
                raise RuntimeError("the execution that owned this resolve info has ended")
            return context.gather_async_work(values)

        def track(values: Sequence[Any]) -> None:
            context = ref()
            if context is not None:
                context.track_async_work(values)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)
