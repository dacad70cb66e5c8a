"""The compiled read path without Strawberry's per-request pipeline, for documents already seen.

A request whose every verdict is already cached answers here: its document parsed and
validated without errors (DocumentCache), its cost known and within the limit (the document's
cost cache), its plan compiled (PlanCache). What is left per request is what normal execution
would do for it too: coerce the variables, charge the caller's rate-limit budget, run the one
statement in a `graphql.operation` span, and the operation's metrics and access-log name
(`tracing.complete`). The data is the same `{"data": ...}` bytes normal execution encodes.

Anything else (first sight of a document, a cost not yet computed, a refused verdict, variables
that do not coerce, a statement that falls back) is normal execution's: `answer` then calls
`normal()` inside the operation's span, with `limits.BEGUN` saying that span is open and what
was charged, so that the operation still has one span and is charged once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from graphql import OperationType, get_operation_ast
from graphql.execution.values import get_variable_values

from app.auth.ratelimit import RateLimiter, Verdict
from app.core.settings import Settings
from app.core.viewer import Viewer
from app.observability import metrics, spans
from graphql_schema.execution.compiler.base import Fallback
from graphql_schema.execution.compiler.extension import PlanCache, run_plan
from graphql_schema.execution.compiler.plan import Plan, shape
from graphql_schema.extensions.documents import DocumentCache
from graphql_schema.extensions.limits import BEGUN, Begun, charge_subject, cost_key
from graphql_schema.extensions.tracing import complete

T = TypeVar("T")
_ALLOWED_KEYS = frozenset({"query", "variables", "operationName"})


@dataclass(slots=True)
class Ticket:
    """A request the fast path can answer: its plan, parameters and cost."""

    query: str
    operation_name: str | None
    plan: Plan
    params: list[Any]
    cost: int


class FastReads:
    def __init__(
        self,
        settings: Settings,
        documents: DocumentCache,
        plans: PlanCache,
        limiter: RateLimiter,
        names: metrics.OperationNames,
    ) -> None:
        self.settings = settings
        self.documents = documents
        self.plans = plans
        self.limiter = limiter
        self.names = names

    def prepare(self, payload: object) -> Ticket | None:
        """The ticket of a request body (parsed JSON) whose verdicts are all cached, else None."""
        if type(payload) is not dict or not _ALLOWED_KEYS.issuperset(payload):
            return None
        query = payload.get("query")
        name = payload.get("operationName")
        variables = payload.get("variables")
        if type(query) is not str or (name is not None and type(name) is not str):
            return None
        if variables is None:
            variables = {}
        elif type(variables) is not dict:
            return None
        document = self.documents.cached(query)
        if document is None or document.node is None or document.validation != []:
            return None
        operation = get_operation_ast(document.node, name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        if name is None and operation.name is not None:
            name = operation.name.value  # as Strawberry names an operation the request did not
        cost = document.costs.get(cost_key(name, variables))
        schema = self.plans.schema
        if cost is None or cost > self.settings.security.max_cost or schema is None:
            return None
        coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):  # coercion errors: normal execution reports them
            return None
        plan = self.plans.get((query, name, shape(coerced.coerced)))
        if not isinstance(plan, Plan):
            return None
        try:
            params = plan.parameters(coerced)
        except Fallback:
            return None
        return Ticket(query, name, plan, params, cost)

    async def answer(
        self,
        ticket: Ticket,
        viewer: Viewer,
        host: str | None,
        redis: Any,
        engine: Any,
        normal: Callable[[], Awaitable[T]],
    ) -> bytes | T:
        """The response body of `ticket`'s operation, or what `normal()` answers when the
        compiled statement falls back or the rate limit refuses it."""
        started = time.perf_counter()
        with spans.span(spans.tracer("bookbridge.graphql"), "graphql.operation") as span:
            verdict: Verdict | None = None
            chosen = charge_subject(self.settings.security, viewer, host)
            if chosen is not None:
                subject, limit = chosen
                verdict = await self.limiter.hit(redis, subject, max(ticket.cost, 1), limit)
            data = None
            if verdict is None or verdict.allowed:
                try:  # the viewer's scope (a student's own rows), else normal execution's
                    params = ticket.plan.for_viewer(ticket.params, viewer)
                except Fallback:
                    params = None
                if params is not None:
                    data = await run_plan(engine, ticket.plan, params, driver=self.plans.driver)
            if data is None:
                token = BEGUN.set(Begun(span, started, verdict))
                try:
                    return await normal()
                finally:
                    BEGUN.reset(token)
            complete(self.names, span, ticket.operation_name, "query", ticket.query, None, started)
        return orjson.dumps({"data": data})
