"""The loader base: batches keys with Strawberry's DataLoader and reads on its own connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from strawberry.dataloader import DataLoader

from bookbridge.app.db.records import Record

K = TypeVar("K")
V = TypeVar("V")


class ReadLoader(DataLoader[K, V], Generic[K, V]):
    """A DataLoader whose batch function gets a fresh read connection.

    Sibling fields resolve concurrently, so each batch takes its own pooled connection in
    autocommit mode (no BEGIN/ROLLBACK round trips) instead of sharing one session.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(load_fn=self._load)
        self._engine = engine

    async def _load(self, keys: list[K]) -> Sequence[V]:
        async with self._engine.connect() as conn:
            return await self.fetch(conn, keys)

    async def fetch(self, conn: AsyncConnection, keys: list[K]) -> Sequence[V]:
        raise NotImplementedError


def by_id(
    fetch: Callable[[AsyncConnection, Sequence[str]], Awaitable[list[Record]]],
) -> Callable[[AsyncConnection, list[str]], Awaitable[list[Record | None]]]:
    """Turn a fetch-by-ids query into a batch function that answers each key (None if unknown)."""

    async def batch(conn: AsyncConnection, keys: list[str]) -> list[Record | None]:
        found = {row.id: row for row in await fetch(conn, keys)}
        return [found.get(key) for key in keys]

    return batch
