"""The one place a database URL becomes an engine: DATABASE_URL or the embedded server, migrated."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.settings import Settings, normalize_database_url
from app.db.migrate import upgrade
from app.db.pool import FairAsyncAdaptedQueuePool


def make_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    target = url or settings.database_url
    if not target:
        raise RuntimeError("no database URL: resolve_database_url() starts the embedded server")
    return create_async_engine(
        normalize_database_url(target),
        poolclass=FairAsyncAdaptedQueuePool,  # first come, first served (db/pool.py)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": "bookbridge"}},
    )


def resolve_database_url(settings: Settings, *, migrate: bool = True) -> str:
    """DATABASE_URL when set, else the embedded server (started here), in the asyncpg form.

    The embedded server is always migrated; a DATABASE_URL only when `migrate` is true (the
    CLI commands migrate, a served app expects `bookbridge migrate` to have run)."""
    if settings.database_url:
        url = normalize_database_url(settings.database_url)
        if migrate:
            upgrade(url)
        return url
    from app.db.embedded import embedded_database_url

    url = normalize_database_url(embedded_database_url(settings.data_dir))
    upgrade(url)
    return url


def with_database(settings: Settings, *, migrate: bool = True) -> Settings:
    """`settings` with `database_url` resolved (see resolve_database_url)."""
    url = resolve_database_url(settings, migrate=migrate)
    return settings.model_copy(update={"database_url": url})
