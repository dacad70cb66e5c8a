"""Creates the async engine; one per process, made in the app lifespan or the CLI."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.settings import Settings, normalize_database_url
from app.db.pool import FairAsyncAdaptedQueuePool


def make_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    target = url or settings.database_url
    if not target:
        raise RuntimeError("no database URL: start the embedded server first (app.embedded)")
    return create_async_engine(
        normalize_database_url(target),
        poolclass=FairAsyncAdaptedQueuePool,  # first come, first served (db/pool.py)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "bookbridge"}},
    )
