"""The GraphQL limits of one schema: depth, aliases, tokens, introspection, cost, rate limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import ASTValidationRule, GraphQLError, GraphQLSchema
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

from app.auth.ratelimit import RateLimiter, Verdict
from app.core.settings import SecuritySettings
from app.core.viewer import Viewer
from graphql_schema.extensions.cost import operation_cost
from graphql_schema.extensions.documents import CachedDocuments, DocumentCache
from graphql_schema.extensions.shape import shape_rule

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

    from strawberry.types import ExecutionContext

    from app.core.settings import Settings
    from graphql_schema.types.context import Context


Then = Callable[["ExecutionContext"], "Awaitable[None]"]


@dataclass(slots=True)
class Begun:
    """An operation the compiled fast path (graphql_schema/execution/compiler/fast.py) began and
    hands to normal execution: its `graphql.operation` span is open (OperationTelemetry uses it
    instead of starting a second one) and its rate-limit verdict is known (CostLimiter uses it
    instead of charging the caller twice); `verdict` None: nothing was charged."""

    span: Any
    started: float
    verdict: Verdict | None


BEGUN: ContextVar[Begun | None] = ContextVar("bookbridge_begun", default=None)


def cost_key(operation_name: str | None, variables: Mapping[str, Any]) -> object:
    """The key of an operation's cost in its document's cache: the operation and the integer
    (or null) variables, which `first` may read."""
    return (
        operation_name,
        tuple(sorted((k, v) for k, v in variables.items() if v is None or type(v) is int)),
    )


def charge_subject(
    security: SecuritySettings, viewer: Viewer | None, host: str | None
) -> tuple[str, int] | None:
    """Whose budget an operation is charged to and its limit per minute; None: not charged
    (no viewer, an admin, or a limit of 0)."""
    if viewer is None or viewer.is_admin:
        return None
    if viewer.authenticated:
        subject, limit = viewer.subject, security.rate_limit_cost_per_minute
    else:
        subject, limit = f"ip:{host or 'local'}", security.rate_limit_anonymous_cost_per_minute
    if limit <= 0:
        return None
    return subject, limit


class CostSchema:
    """The graphql-core schema the cost is computed over, set once the schema is built."""

    schema: GraphQLSchema | None = None


def limit_extensions(
    settings: Settings,
    limiter: RateLimiter,
    documents: DocumentCache,
    cost_schema: CostSchema,
    then: Then | None = None,
) -> list[Callable[[], SchemaExtension]]:
    """In the order they refuse, cheapest first: document length and tokens (at parse, through
    the document cache), depth and aliases (validation, fragments measured once), cost.
    `then` runs after the cost and rate-limit checks, in the same hook (see CostLimiter)."""
    security = settings.security
    # The rule classes are made once: new classes per request would defeat cached validation.
    rules: list[type[ASTValidationRule]] = [shape_rule(security.max_depth, security.max_aliases)]
    if not security.switch("introspection", production=settings.production):
        rules.append(NoSchemaIntrospectionCustomRule)  # what DisableIntrospection adds
    # CachedDocuments adds the rules at validation, as AddValidationRules / DisableIntrospection
    # did from an on_operation hook of their own (Strawberry wraps every hook on each request)
    return [
        lambda: CachedDocuments(documents, rules),
        lambda: CostLimiter(settings, limiter, documents, cost_schema, then),
    ]


class CostLimiter(SchemaExtension):
    """Refuses an operation over the cost limit, then charges its cost to the caller's budget.

    Runs once per operation after validation (never per field), so resolvers stay on
    graphql-core's fast path. Costs are kept with their document (by operation name and the
    integer variables, which `first` may read).

    `then(execution_context)` runs last in the same `on_execute` (the compiled read path): one
    async hook fewer per request than an extension of its own, in the same order.
    """

    def __init__(
        self,
        settings: Settings,
        limiter: RateLimiter,
        documents: DocumentCache | None = None,
        cost_schema: CostSchema | None = None,
        then: Then | None = None,
    ) -> None:
        self.settings = settings
        self.then = then
        self.limiter = limiter
        self.documents = documents
        self.cost_schema = cost_schema or CostSchema()

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        security = self.settings.security
        if ec.graphql_document is not None and self.cost_schema.schema is not None:
            cost = self._cost()
            if cost > security.max_cost:
                ec.result = _refusal(
                    f"Query cost {cost} is over the limit of {security.max_cost}: "
                    "ask for smaller pages (first) or fewer nested lists",
                    "QUERY_TOO_COSTLY",
                    cost=cost,
                    maxCost=security.max_cost,
                )
            else:
                await self._charge(ec.context, cost)
        if self.then is not None:
            await self.then(ec)
        yield

    def _cost(self) -> int:
        ec = self.execution_context
        assert ec.graphql_document is not None and self.cost_schema.schema is not None
        variables = ec.variables or {}
        key = cost_key(ec.operation_name, variables)
        document = self.documents.get(ec.query) if self.documents and ec.query else None
        if document is not None and document.node is not ec.graphql_document:
            document = None  # not the document this operation runs
        if document is not None and (known := document.costs.get(key)) is not None:
            return known
        cost = operation_cost(
            self.cost_schema.schema,
            ec.graphql_document,
            ec.operation_name,
            variables,
            default_first=self.settings.default_page_size,
            list_estimate=self.settings.security.list_cost_estimate,
        )
        if document is not None:
            document.remember_cost(key, cost)
        return cost

    async def _charge(self, context: Context | Any, cost: int) -> None:
        begun = BEGUN.get()
        if begun is not None:  # the fast path charged this operation already (or not at all)
            if begun.verdict is None or begun.verdict.allowed:
                return
            verdict = begun.verdict
            limit = verdict.limit
        else:
            request = getattr(context, "request", None)
            host = request.client.host if request is not None and request.client else None
            chosen = charge_subject(self.settings.security, getattr(context, "viewer", None), host)
            if chosen is None:
                return
            subject, limit = chosen
            verdict = await self.limiter.hit(context.services.redis, subject, max(cost, 1), limit)
        if verdict.allowed:
            return
        self.execution_context.result = _refusal(
            f"Rate limit: {verdict.used} of {limit} cost points this minute; "
            f"retry in {verdict.retry_after} s",
            "RATE_LIMITED",
            retryAfter=verdict.retry_after,
        )
        if context.response is not None:
            context.response.status_code = 429
            context.response.headers["Retry-After"] = str(verdict.retry_after)


def _refusal(message: str, code: str, **extensions: object) -> GraphQLExecutionResult:
    return GraphQLExecutionResult(
        data=None, errors=[GraphQLError(message, extensions={"code": code, **extensions})]
    )
