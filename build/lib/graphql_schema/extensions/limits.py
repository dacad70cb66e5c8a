"""The GraphQL limits of one schema: depth, aliases, tokens, introspection, cost, rate limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphql import ASTValidationRule, GraphQLError
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from app.auth.ratelimit import RateLimiter
from graphql_schema.extensions.cost import operation_cost

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from app.core.settings import Settings
    from graphql_schema.types.context import Context


def limit_extensions(
    settings: Settings, limiter: RateLimiter
) -> list[Callable[[], SchemaExtension]]:
    security = settings.security
    # The rule classes are made once: QueryDepthLimiter/MaxAliasesLimiter make new ones per
    # instance (per request), and new classes defeat ValidationCache (it keys on the rules).
    rules: list[type[ASTValidationRule]] = [
        depth_rule(security.max_depth, None),
        alias_rule(security.max_aliases),
    ]
    factories: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=security.max_tokens),
        lambda: AddValidationRules(rules),
    ]
    if not security.switch("introspection", production=settings.production):
        factories.append(DisableIntrospection)
    factories.append(lambda: CostLimiter(settings, limiter))
    return factories


class CostLimiter(SchemaExtension):
    """Refuses an operation over the cost limit, then charges its cost to the caller's budget.

    Runs once per operation after validation (never per field), so resolvers stay on
    graphql-core's fast path.
    """

    def __init__(self, settings: Settings, limiter: RateLimiter) -> None:
        self.settings = settings
        self.limiter = limiter

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        document = ec.graphql_document
        security = self.settings.security
        if document is not None:
            cost = operation_cost(
                ec.schema._schema,
                document,
                ec.operation_name,
                ec.variables,
                default_first=self.settings.default_page_size,
                list_estimate=security.list_cost_estimate,
            )
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
        yield

    async def _charge(self, context: Context | Any, cost: int) -> None:
        security = self.settings.security
        viewer = getattr(context, "viewer", None)
        if viewer is None or viewer.is_admin:
            return
        if viewer.authenticated:
            subject, limit = viewer.subject, security.rate_limit_cost_per_minute
        else:
            request = context.request
            host = request.client.host if request is not None and request.client else "local"
            subject, limit = f"ip:{host}", security.rate_limit_anonymous_cost_per_minute
        if limit <= 0:
            return
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
