"""graphql-core's execution context without its reference cycle.

graphql-core stores `GraphQLResolveInfoHelpers(gather=self.gather_async_work, ...)` on the
context: bound methods of the context held by the context. Everything a request's execution
references (variables, the request context, its loaders and their cached rows) was therefore
freed only by the cyclic garbage collector, never by reference counting: about 190 objects per
recommendation request, freed in collector pauses of 4-7 ms every few dozen requests
(measured with gc.DEBUG_SAVEALL and DEBUG_STATS; docs/performance.md). The helpers here reach
the context through a weak reference instead; they are only used while the execution (which
holds the context) runs.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
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
