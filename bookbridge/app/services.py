"""Long-lived resources of one process (engines, settings), made in the lifespan or the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bookbridge.app.db.engine import make_engine
from bookbridge.app.settings import Settings


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    read_engine: AsyncEngine  # autocommit view of `engine`: reads skip BEGIN/ROLLBACK

    @classmethod
    def create(cls, settings: Settings) -> Services:
        engine = make_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            read_engine=engine.execution_options(isolation_level="AUTOCOMMIT"),
        )

    async def close(self) -> None:
        await self.engine.dispose()
