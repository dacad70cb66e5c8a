"""In-process cost per request of the compiled read path against normal execution.

    python -m bench.compiled_inproc [postgresql://.../compiler_bench] [--requests 200]

Reuses a seeded bench database (`python -m bench` seeds it). No sockets: each request is
`schema.execute` with a fresh context, as the HTTP layer runs it, then orjson encoding of the
response. Per scenario and path: Python CPU per request (process time, includes the driver),
wall time per request, SQL statements per request; the two paths alternate in every round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import orjson
from sqlalchemy import event

from app.core.settings import Settings, normalize_database_url
from app.runtime.services import Services
from bench import scenarios
from bench.__main__ import default_database_url
from graphql_schema.schema import build_schema
from graphql_schema.types.context import Context


async def run(url: str, requests: int, rounds: int) -> list[dict[str, Any]]:
    settings = Settings(bookbridge_env="test", database_url=normalize_database_url(url))
    # per-client rate limits would measure the limiter (as in `python -m bench`): off
    security = settings.security.model_copy(
        update={"rate_limit_cost_per_minute": 0, "rate_limit_anonymous_cost_per_minute": 0}
    )
    settings = settings.model_copy(update={"security": security})
    services = Services.create(settings)
    statements = [0]
    event.listen(
        services.engine.sync_engine,
        "before_cursor_execute",
        lambda *a: statements.__setitem__(0, statements[0] + 1),
    )
    off = settings.model_copy(update={"compiled_reads": False})
    schemas = {"compiled": build_schema(settings), "normal": build_schema(off)}
    rows = []
    try:
        for scenario in await scenarios.read_scenarios(url.replace("+asyncpg", "")):
            bodies = [orjson.loads(b) for b in scenario.bodies]
            samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in schemas}
            for _ in range(rounds):
                for name, schema in schemas.items():
                    for body in bodies[:5]:  # warm: plans, prepared statements
                        await schema.execute(
                            body["query"], body["variables"], context_value=Context.create(services)
                        )
                    statements[0] = 0
                    cpu, wall = time.process_time(), time.perf_counter()
                    for i in range(requests):
                        body = bodies[i % len(bodies)]
                        result = await schema.execute(
                            body["query"], body["variables"], context_value=Context.create(services)
                        )
                        assert not result.errors, result.errors
                        orjson.dumps({"data": result.data})
                    samples[name].append(
                        (
                            (time.process_time() - cpu) / requests * 1e3,
                            (time.perf_counter() - wall) / requests * 1e3,
                            statements[0] / requests,
                        )
                    )
            for name, got in samples.items():
                rows.append(
                    {
                        "scenario": scenario.name,
                        "path": name,
                        "cpu_ms": statistics.median(s[0] for s in got),
                        "wall_ms": statistics.median(s[1] for s in got),
                        "statements": statistics.median(s[2] for s in got),
                    }
                )
    finally:
        await services.close()
    return rows


def own_python(url_free_bodies: dict[str, dict[str, Any]], n: int = 5000) -> dict[str, float]:
    """Microseconds of the compiled path's own Python per request, before the statement:
    operation lookup, variable coercion, plan key, bind parameters (the plan cached)."""
    from graphql import build_schema as build_graphql_schema
    from graphql import get_operation_ast, parse
    from graphql.execution.values import get_variable_values

    from graphql_schema.execution.compiler.plan import Compiler, shape
    from graphql_schema.schema import SQL_MAPPING

    schema = build_graphql_schema(build_schema().as_str())
    out = {}
    for name, body in url_free_bodies.items():
        document = parse(body["query"])
        operation = get_operation_ast(document, None)
        assert operation is not None
        variables: Any = get_variable_values(
            schema, operation.variable_definitions, body["variables"]
        )
        plan = Compiler(schema, SQL_MAPPING, document, operation, variables, (20, 100)).compile()
        started = time.perf_counter()
        for _ in range(n):
            operation = get_operation_ast(document, None)
            assert operation is not None
            variables = get_variable_values(
                schema, operation.variable_definitions, body["variables"]
            )
            _ = (body["query"], None, shape(variables.coerced))
            plan.parameters(variables)
        out[name] = (time.perf_counter() - started) / n * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.compiled_inproc", description=__doc__)
    p.add_argument("database_url", nargs="?", default=default_database_url())
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    rows = asyncio.run(run(args.database_url, args.requests, args.rounds))
    print("| scenario | path | Python CPU ms/request | wall ms/request | SQL statements/request |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['path']} | {r['cpu_ms']:.2f} | {r['wall_ms']:.2f} |"
            f" {r['statements']:.1f} |"
        )
    bodies = {
        s.name: orjson.loads(s.bodies[1])
        for s in asyncio.run(scenarios.read_scenarios(args.database_url.replace("+asyncpg", "")))
    }
    for name, us in own_python(bodies).items():
        print(f"{name}: the compiled path's own Python before the statement: {us:.1f} us/request")
    by = {(r["scenario"], r["path"]): r for r in rows}
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        ratio = by[(scenario, "normal")]["cpu_ms"] / by[(scenario, "compiled")]["cpu_ms"]
        print(f"{scenario}: compiled uses {ratio:.1f}x less Python CPU per request")


if __name__ == "__main__":
    main()
