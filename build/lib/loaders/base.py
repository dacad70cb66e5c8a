"""The loader base: batches keys with Strawberry's DataLoader and reads on its own connection."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from strawberry.dataloader import DataLoader

from app.db.records import Record
from loaders.tracing import traced_batch

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
MISSING: Any = object()


class BatchLoader(DataLoader[K, V], Generic[K, V]):
    """A DataLoader whose batch function is the method `_load`, reached without a cycle.

    The batch function reaches the loader weakly: `self._load` itself would make the loader a
    reference cycle, and everything it cached (futures, rows) garbage that only the cyclic
    collector frees (see graphql_schema/execution.py). A pending batch's task holds the loader,
    so it is alive whenever its batch function runs.
    """

    def __init__(self) -> None:
        ref = weakref.ref(self)

        async def load(keys: list[K]) -> Sequence[V | BaseException]:
            loader = ref()
            assert loader is not None, "a batch outlived its loader"
            return await loader._load(keys)

        super().__init__(load_fn=traced_batch(type(self).__name__, load))

    async def _load(self, keys: list[K]) -> Sequence[V | BaseException]:
        """Each key's value, or an exception that its `load` raises."""
        raise NotImplementedError


class ReadLoader(BatchLoader[K, V]):
    """A BatchLoader whose batch function gets a fresh read connection.

    Sibling fields resolve concurrently, so each batch takes its own pooled connection in
    autocommit mode (no BEGIN/ROLLBACK round trips) instead of sharing one session.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine
        self._done: dict[K, V] = {}
        self._made: dict[tuple[K, Callable[[V], Any]], Any] = {}

    async def _load(self, keys: list[K]) -> Sequence[V]:
        async with self._engine.connect() as conn:
            values = await self.fetch(conn, keys)
        self._done.update(zip(keys, values, strict=True))
        return values

    def peek(self, key: K) -> V:
        """The value if a batch of this request already loaded `key`, else MISSING."""
        found: V = self._done.get(key, MISSING)
        return found

    def now_or_later(self, key: K, convert: Callable[[V], T]) -> T:
        """`convert(value)` when already loaded, else an awaitable of it.

        graphql-core awaits whatever a resolver returns that is awaitable, so a plain
        (non-async) resolver that returns the value directly stays on the fast synchronous
        path whenever a parent resolver loaded its data ahead (see graphql_schema/lookahead.py).
        """
        made = self._made.get((key, convert), MISSING)  # one object per key, not per use
        if made is not MISSING:
            return cast(T, made)
        found = self._done.get(key, MISSING)
        if found is not MISSING:
            value = self._made[key, convert] = convert(found)
            return value

        async def later() -> T:
            return convert(await self.load(key))

        return cast(T, later())

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
