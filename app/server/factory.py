"""The app factory: routes, lifespan (engines made here, never at import), health endpoints."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app import __version__
from app.core.deadline import within
from app.core.settings import Settings
from app.db.engine import with_database
from app.db.ops import dead_letter_count
from app.db.pool import FairAsyncAdaptedQueuePool
from app.observability import metrics, tracing
from app.observability.logging import configure_logging
from app.reco import data as reco_data
from app.runtime.gc import tune_gc
from app.runtime.services import Services
from app.server.body import JsonLimits, RequestBodyMiddleware
from app.server.dispatch import Service
from app.server.graphiql import (
    STATIC_DIR,
    STATIC_PATH,
    content_security_policy,
    graphiql_page,
)
from app.server.gzip import GZipMiddleware
from app.server.http import GraphQLApp
from app.server.response_cache import ResponseCache
from app.server.telemetry import TelemetryMiddleware
from graphql_schema.schema import build_schema

log = logging.getLogger(__name__)


def observe_pool(services: Services) -> None:
    """Read the connection pool into its gauges (at scrape time)."""
    pool = services.engine.sync_engine.pool
    if isinstance(pool, FairAsyncAdaptedQueuePool):
        metrics.observe_pool(pool.checkedout(), pool.waiting())


async def readiness(services: Services) -> tuple[bool, dict[str, str]]:
    """Ready only when the database answers (a replica cannot serve without it); Redis is
    optional (caches and rate limits fall back to the process) and reported as degraded."""
    try:
        async with services.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; say which
        log.warning("readiness check failed: %s", exc)
        return False, {"database": "unreachable"}
    redis = services.redis
    if redis is None:
        return True, {"database": "ok"}
    reco = services.settings.reco
    try:
        await within(
            redis.ping(), max(reco.redis_timeout_seconds, 0.1), reco.redis_busy_limit_seconds
        )
    except Exception as exc:  # served without it: degraded, not unready
        log.warning("readiness: redis degraded: %s", exc)
        return True, {"database": "ok", "redis": "degraded"}
    return True, {"database": "ok", "redis": "ok"}


async def _observe_model_selection(conn: AsyncConnection) -> None:
    """The worker's model selection (another process), from its row, into the metrics."""
    chosen = await reco_data.stored_selection(conn)
    if chosen:
        metrics.observe_selection(
            str(chosen.get("model")),
            chosen.get("validation_ndcg") or {},
            chosen.get("fit_seconds") or {},
            chosen.get("weights"),
        )


async def _shutdown(
    services: Services, cache: ResponseCache, provider: TracerProvider | None, owned: bool
) -> None:
    """The lifespan's end: the stored lists' write-backs still under way land first (before
    the engines close: app/reco/stored.WriteBack), then the response cache, tracing and, when
    the lifespan made them, the services close."""
    await services.stored_writes.drain()
    await cache.close()
    if provider is not None:
        provider.shutdown()
    if owned:
        await services.close()


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
            await _shutdown(state["services"], cache, provider, owned is not None)
            if owned is not None:
                state.pop("services", None)

    def current() -> Services:
        return state["services"]

    security = settings.security
    json_limits = JsonLimits(security.max_json_depth, security.max_json_elements)
    schema = build_schema(settings)
    ide = security.switch("graphiql", production=settings.production)
    graphql = GraphQLApp(
        current,
        json_limits=json_limits,
        retry_after=security.unavailable_retry_after_seconds,
        schema=schema,
        graphiql_page=graphiql_page(security.graphiql_assets) if ide else None,
        graphiql_csp=content_security_policy(security.graphiql_assets),
        allow_queries_via_get=True,
    )
    # public catalog queries; see its docstring
    cache = ResponseCache(graphql, current, settings, schema.documents)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> Response:
        ready, body = await readiness(current())
        if ready:
            return JSONResponse(body)
        retry = {"Retry-After": str(security.unavailable_retry_after_seconds)}
        return JSONResponse(body, status_code=503, headers=retry)

    async def prometheus(request: Request) -> Response:
        services = current()
        observe_pool(services)
        ready, _ = await readiness(services)
        metrics.READY.set(1 if ready else 0)
        if ready:
            try:
                async with services.read_engine.connect() as conn:
                    metrics.DEAD_LETTERS.set(await dead_letter_count(conn))
                    await _observe_model_selection(conn)
            except Exception as exc:  # a scrape still answers when the database is down
                log.warning("metrics: dead-letter count or model selection failed: %s", exc)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return Service(
        lane_path="/graphql",
        routes=[
            Route("/graphql", cache, methods=["GET", "POST"]),
            *([Mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR))] if ide else []),
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
