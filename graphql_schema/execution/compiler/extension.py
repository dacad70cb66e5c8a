"""The compiled read path as a Strawberry schema extension (registered last).

`on_execute` runs after parsing, validation and every earlier extension's `on_execute` (limits,
cost, rate limits): when none of them set a result and the operation is a query the mapping
covers, it answers with one statement and sets `execution_context.result`; Strawberry then skips
its own execution. The data is `{response key: orjson.Fragment(json text)}`, spliced as is by
the HTTP layer's orjson encoder. Anything else (mutations, introspection, unmapped fields,
argument errors, variables that do not coerce) is left to normal execution.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLSchema, OperationType, get_operation_ast
from graphql.execution.values import get_variable_values
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from app.db import driver as db_driver
from app.observability import spans
from graphql_schema.execution.compiler.base import Fallback, Unsupported
from graphql_schema.execution.compiler.mapping import Table
from graphql_schema.execution.compiler.plan import Compiler, Plan, shape

log = logging.getLogger("bookbridge.graphql.compiled")


class PlanCache:
    """Plans (or None: not compilable) per (document, operation name, variables' shape).

    `schema` is graphql-core's schema built from the Strawberry schema's SDL (the same types,
    reached without Strawberry's private attributes): fields are collected and arguments
    coerced against it.

    `driver`: run the statement on the pooled asyncpg connection itself (SQLAlchemy's public
    `AsyncEngine.raw_connection()` and `driver_connection`; asyncpg's own prepared-statement
    cache) instead of `AsyncConnection.exec_driver_sql`: about 30% less CPU for a small read,
    but SQLAlchemy's cursor events (the OpenTelemetry SQLAlchemy span) do not see that
    statement: the `graphql.compiled_read` span carries its `db.statement` instead, and asyncpg's
    query loggers (the tests' and the bench's statement counters) see it. The default.
    """

    def __init__(
        self, mapping: dict[str, Table], maxsize: int = 512, *, driver: bool = True
    ) -> None:
        self.schema: GraphQLSchema | None = None
        self.mapping = mapping
        self.driver = driver
        self.maxsize = maxsize
        self.plans: OrderedDict[Hashable, Plan | None] = OrderedDict()

    def bind(self, schema: GraphQLSchema) -> None:
        """Set the schema once it is built (the extension is registered before)."""
        self.schema = schema

    def get(self, key: Hashable) -> Plan | bool | None:
        found = self.plans.get(key, False)
        if found is not False:
            self.plans.move_to_end(key)
        return found

    def put(self, key: Hashable, plan: Plan | None) -> None:
        self.plans[key] = plan
        if len(self.plans) > self.maxsize:
            self.plans.popitem(last=False)


class CompiledReads(SchemaExtension):
    """The compiled path as an extension of its own. `build_schema` runs `answer_compiled` as
    the last step of the cost limiter's `on_execute` instead: the same order (after every limit,
    cost and rate-limit check) with one hook fewer, as Strawberry wraps and enters every hook of
    every extension on each request."""

    def __init__(self, cache: PlanCache) -> None:
        self.cache = cache

    async def on_execute(self) -> AsyncIterator[None]:
        await answer_compiled(self.cache, self.execution_context)
        yield


async def answer_compiled(cache: PlanCache, ec: ExecutionContext) -> None:
    """Set `ec.result` from the compiled statement when no earlier step set one and the
    operation compiles; else leave it to normal execution."""
    if ec.result is None and ec.graphql_document is not None and ec.query is not None:
        try:
            result = await _answer(cache, ec)
        except Exception:  # never the compiled path's error: normal execution reports it
            log.exception("compiled read failed; falling back to normal execution")
            result = None
        if result is not None:
            ec.result = result


async def _answer(cache: PlanCache, ec: ExecutionContext) -> ExecutionResult | None:
    document = ec.graphql_document
    assert document is not None
    operation = get_operation_ast(document, ec.operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    schema = cache.schema
    if schema is None:
        return None
    variables = get_variable_values(
        schema, operation.variable_definitions or (), ec.variables or {}
    )
    if isinstance(variables, list):  # coercion errors: graphql-core reports them
        return None
    key = (ec.query, ec.operation_name, shape(variables.coerced))
    plan = cache.get(key)
    settings = ec.context.settings
    try:
        if plan is False:
            pages = (settings.default_page_size, settings.max_page_size)
            try:
                plan = Compiler(
                    schema, cache.mapping, document, operation, variables, pages, settings.reco
                ).compile()
            except Unsupported:
                plan = None
            cache.put(key, plan)
        if plan is None or plan is True:
            return None
        params = plan.for_viewer(plan.parameters(variables), ec.context.viewer)
    except Fallback:
        return None
    return await _run(ec, plan, params, driver=cache.driver)


async def _run(
    ec: ExecutionContext, plan: Plan, params: list[Any], *, driver: bool = False
) -> ExecutionResult | None:
    data = await run_plan(ec.context.services.read_engine, plan, params, driver=driver)
    return None if data is None else ExecutionResult(data=data)


async def run_plan(
    engine: AsyncEngine, plan: Plan, params: list[Any], *, driver: bool = False
) -> dict[str, orjson.Fragment] | None:
    """The operation's data, `{response key: orjson.Fragment(json text)}`, from its one
    statement (in a `graphql.compiled_read` span); None: normal execution must answer."""
    tracer = spans.tracer("bookbridge.graphql")
    with spans.span(tracer, "graphql.compiled_read") as span:
        try:
            if driver:
                if span.is_recording():  # what SQLAlchemy's span would say (no parameters)
                    span.set_attribute("db.system", "postgresql")
                    span.set_attribute("db.statement", plan.sql)
                found = await db_driver.fetchrow(engine, plan.sql, params)
                if found is None:
                    raise LookupError("the compiled statement returned no row")
                row = found
            else:
                async with engine.connect() as conn:
                    row = (await conn.exec_driver_sql(plan.sql, tuple(params))).one()
        except Exception as exc:  # e.g. a non-finite float (see jsonsql): normal execution
            if span.is_recording():
                span.set_attribute("bookbridge.compiled.fallback", type(exc).__name__)
            log.info("compiled read fell back: %s", type(exc).__name__)
            return None
    if any(value is None for value in row):
        return None
    return {key: orjson.Fragment(value) for key, value in zip(plan.keys, row, strict=True)}
