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
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Undefined,
    coerce_input_value,
    get_nullable_type,
    get_operation_ast,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource, get_variable_values

from app.auth.ratelimit import RateLimiter, Verdict
from app.core.settings import Settings
from app.core.viewer import Viewer
from app.observability import metrics, spans
from graphql_schema.execution.compiler.base import Fallback
from graphql_schema.execution.compiler.extension import PlanCache, run_plan
from graphql_schema.execution.compiler.plan import Plan, shape
from graphql_schema.extensions.documents import Document, DocumentCache
from graphql_schema.extensions.limits import BEGUN, Begun, charge_subject, cost_key
from graphql_schema.extensions.tracing import complete

T = TypeVar("T")
_ALLOWED_KEYS = frozenset({"query", "variables", "operationName"})


MAX_LANES_PER_DOCUMENT = 8  # operation names whose lane a document keeps (as `public`)


@dataclass(frozen=True, slots=True)
class Lane:
    """What the fast lane works out once per document and requested operation name: the
    query operation, its name, and its variables' signatures when every variable is of a leaf
    type (scalar or enum) with no default (None: graphql-core's `get_variable_values` coerces
    them, as before)."""

    operation: OperationDefinitionNode
    name: str | None
    signatures: tuple[GraphQLVariableSignature, ...] | None

    def coerce(self, schema: GraphQLSchema, inputs: dict[str, Any]) -> VariableValues | None:
        """The coerced variables, as `get_variable_values` gives them; None on any error
        (normal execution then reports it)."""
        if self.signatures is None:
            found = get_variable_values(schema, self.operation.variable_definitions or (), inputs)
            return None if isinstance(found, list) else found
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for signature in self.signatures:
            value = inputs.get(signature.name, Undefined)
            if value is Undefined:
                if is_non_null_type(signature.type):
                    return None  # a required variable not given
                sources[signature.name] = VariableValueSource(signature)
                continue  # a nullable one not given is left out
            sources[signature.name] = VariableValueSource(signature, value)
            value = coerce_input_value(value, signature.type)
            if value is Undefined:
                return None
            coerced[signature.name] = value
        return VariableValues(sources, coerced)


def _lane_of(schema: GraphQLSchema, document: Document, name: str | None) -> Lane | None:
    """The document's lane for operation `name` (worked out on first sight, then kept)."""
    lane = document.lanes.get(name)
    if lane is None and document.node is not None:
        lane = _lane(schema, document.node, name)
        if len(document.lanes) < MAX_LANES_PER_DOCUMENT:
            document.lanes[name] = lane
    return lane if isinstance(lane, Lane) else None


def _lane(schema: GraphQLSchema, document: DocumentNode, name: str | None) -> Lane | bool:
    """The lane of operation `name` of `document`; False: not a query the fast lane takes."""
    operation = get_operation_ast(document, name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return False
    if name is None and operation.name is not None:
        name = operation.name.value
    signatures: list[GraphQLVariableSignature] | None = []
    for node in operation.variable_definitions or ():
        signature = get_variable_signature(schema, node)
        if (
            signatures is None
            or isinstance(signature, GraphQLError)
            or signature.default is not None
            or not is_leaf_type(get_nullable_type(signature.type))
        ):
            signatures = None
        else:
            signatures.append(signature)
    return Lane(operation, name, None if signatures is None else tuple(signatures))


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
        schema = self.plans.schema
        lane = None if schema is None else _lane_of(schema, document, name)
        if lane is None or schema is None:
            return None
        name = lane.name  # as Strawberry names an operation the request did not
        cost = document.costs.get(cost_key(name, variables))
        if cost is None or cost > self.settings.security.max_cost:
            return None
        coerced = lane.coerce(schema, variables)
        if coerced is None:  # coercion errors: normal execution reports them
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
