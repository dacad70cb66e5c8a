"""The app factory: routes, lifespan (engines made here, never at import), health endpoints."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
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
from app.reco import data as reco_data
from app.runtime.gc import tune_gc
from app.runtime.services import Services
from app.server.body import RequestBodyMiddleware
from app.server.http import GraphQLApp
from app.server.response_cache import ResponseCache
from app.server.telemetry import TelemetryMiddleware
from graphql_schema.schema import build_schema

log = logging.getLogger(__name__)


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

    graphql = GraphQLApp(
        current,
        schema=build_schema(settings),
        graphql_ide="graphiql"
        if settings.security.switch("graphiql", production=settings.production)
        else None,
        allow_queries_via_get=True,
    )
    cache = ResponseCache(graphql, current, settings)  # public catalog queries; see its docstring

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        try:
            async with current().read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means not ready; say which
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"database": "unreachable"}, status_code=503)
        redis = current().redis
        if redis is not None:
            try:
                await redis.ping()
            except Exception as exc:  # same: not ready, and the log says why
                log.warning("readiness check failed (redis): %s", exc)
                return JSONResponse({"database": "ok", "redis": "unreachable"}, status_code=503)
            return JSONResponse({"database": "ok", "redis": "ok"})
        return JSONResponse({"database": "ok"})

    async def prometheus(request: Request) -> Response:
        try:
            async with current().read_engine.connect() as conn:
                metrics.DEAD_LETTERS.set(await dead_letter_count(conn))
                await _observe_model_selection(conn)
        except Exception as exc:  # a scrape still answers when the database is down
            log.warning("metrics: dead-letter count or model selection failed: %s", exc)
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
            ),
        ],
        lifespan=lifespan,
    )
