"""Long-lived resources of one process (engines, settings), made in the lifespan or the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import Settings
from app.db.engine import make_engine
from app.ingest.notify import BatchApplied, Listener
from app.reco import data
from app.reco.cache import RecoCache
from app.reco.stored import WriteBack


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    read_engine: AsyncEngine  # autocommit view of `engine`: reads skip BEGIN/ROLLBACK
    redis: Redis | None = None  # REDIS_URL; calls bounded by short socket timeouts
    reco_cache: RecoCache = field(default_factory=RecoCache)
    after_commit: list[Listener] = field(default_factory=list)  # told of every applied batch
    # computed lists stored after their responses (app/reco/stored.py)
    stored_writes: WriteBack = field(default_factory=lambda: WriteBack(0))

    def __post_init__(self) -> None:
        self.after_commit.append(self.forget_changed_lists)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        engine = make_engine(settings)
        redis = make_redis(settings)
        services = cls(
            settings=settings,
            engine=engine,
            read_engine=engine.execution_options(isolation_level="AUTOCOMMIT"),
            redis=redis,
            reco_cache=RecoCache(settings.reco, redis),
            stored_writes=WriteBack(settings.reco.stored_list_background_writes),
        )
        if redis is None:
            # One process sees its own invalidations; what else changes the lists is the
            # worker's `lists` job, in another process: its last run is the marker. With Redis,
            # other replicas' invalidations arrive through Redis versions, so no revalidation.
            services.reco_cache.marker_source = services.lists_marker
        return services

    async def forget_changed_lists(self, event: BatchApplied) -> None:
        """New engagement or topics on study sets invalidate their cached recommendation lists."""
        if event.study_set_ids:
            await self.reco_cache.invalidate_study_sets(event.study_set_ids)

    async def lists_marker(self) -> object:
        """The worker's last `lists` run (reco.data.lists_run): changes when the lists do."""
        async with self.read_engine.connect() as conn:
            return await data.lists_run(conn)

    async def close(self) -> None:
        await self.stored_writes.drain()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def make_redis(settings: Settings) -> Redis | None:
    """A Redis client whose calls fail fast (no retries) when REDIS_URL is set. Its socket
    timeouts are the busy limit: callers bound each call with `app.core.deadline.within`,
    which tells a slow Redis (`redis_timeout_seconds`) from a reply waiting for a busy loop."""
    if not settings.redis_url:
        return None
    timeout = max(settings.reco.redis_timeout_seconds, settings.reco.redis_busy_limit_seconds)
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        retry=None,
        health_check_interval=0,
    )
