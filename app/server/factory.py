"""The app factory: routes, lifespan (engines made here, never at import), health endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.core.settings import Settings
from app.db.engine import with_database
from app.db.ops import dead_letter_count
from app.observability import metrics, tracing
from app.observability.logging import configure_logging
from app.runtime.gc import tune_gc
from app.runtime.services import Services
from app.server.body import JsonLimits, RequestBodyMiddleware
from app.server.http import GraphQLApp
from app.server.response_cache import ResponseCache
from app.server.telemetry import TelemetryMiddleware
from graphql_schema.schema import build_schema

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    """Build the ASGI app. Pass `services` to share engines (tests); else the lifespan makes them."""
    settings = settings or (services.settings if services else Settings())
    state: dict[str, Services] = {}
    if services is not None:
        state["services"] = services

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = None
        if "services" not in state:
            owned = state["services"] = Services.create(with_database(settings, migrate=False))
        if not logging.getLogger().handlers:  # worker processes of `serve --workers N`
            fmt = settings.observability.log_format or ("json" if settings.production else "text")
            configure_logging(settings.log_level, fmt)
        provider = tracing.setup(state["services"])
        if owned is not None:  # serving (not a test's shared services)
            tune_gc()
        try:
            yield
        finally:
            await cache.close()
            if provider is not None:
                provider.shutdown()
            if owned is not None:
                await owned.close()
                state.pop("services", None)

    def current() -> Services:
        return state["services"]

    security = settings.security
    json_limits = JsonLimits(security.max_json_depth, security.max_json_elements)
    schema = build_schema(settings)
    graphql = GraphQLApp(
        current,
        json_limits=json_limits,
        retry_after=security.unavailable_retry_after_seconds,
        schema=schema,
        graphql_ide="graphiql"
        if settings.security.switch("graphiql", production=settings.production)
        else None,
        allow_queries_via_get=True,
    )
    # public catalog queries; see its docstring
    cache = ResponseCache(graphql, current, settings, schema.documents)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        return await readiness(current(), security.unavailable_retry_after_seconds)

    async def prometheus(request: Request) -> Response:
        try:
            async with current().read_engine.connect() as conn:
                metrics.DEAD_LETTERS.set(await dead_letter_count(conn))
        except Exception as exc:  # a scrape still answers when the database is down
            log.warning("metrics: dead-letter count failed: %s", exc)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return Starlette(
        routes=[
            Route("/graphql", cache, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *([Route("/metrics", prometheus)] if settings.observability.metrics else []),
        ],
        middleware=[
            Middleware(TelemetryMiddleware),
            Middleware(
                GZipMiddleware, minimum_size=settings.gzip_min_response_bytes, compresslevel=6
            ),
            Middleware(
                RequestBodyMiddleware,
                max_body_bytes=settings.max_body_bytes,
                max_decompressed_bytes=settings.max_decompressed_body_bytes,
                max_inflate_ratio=security.max_inflate_ratio,
                json_limits=json_limits,
            ),
        ],
        lifespan=lifespan,
    )


async def readiness(services: Services, retry_after: int) -> Response:
    """503 only for what a replica cannot serve without (the database); Redis, optional
    (caches and rate limits fall back to the process), is reported as degraded."""
    try:
        async with services.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; say which
        log.warning("readiness check failed: %s", exc)
        return JSONResponse(
            {"database": "unreachable"},
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )
    redis = services.redis
    if redis is None:
        return JSONResponse({"database": "ok"})
    timeout = max(services.settings.reco.redis_timeout_seconds, 0.1)
    try:
        await asyncio.wait_for(redis.ping(), timeout=timeout)
    except Exception as exc:  # served without it: degraded, not unready
        log.warning("readiness: redis degraded: %s", exc)
        return JSONResponse({"database": "ok", "redis": "degraded"})
    return JSONResponse({"database": "ok", "redis": "ok"})
