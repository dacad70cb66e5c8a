"""The loader base: batches keys with aiodataloader's DataLoader and reads on its own connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.records import Record
from app.observability import spans

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
MISSING: Any = object()


class BatchLoader(DataLoader[K, V], Generic[K, V]):
    """A DataLoader whose batch is `load_batch`, traced: a span per batch (the loader's name and
    the batch size, never the keys).

    `batch_load_fn` is a method, so the loader holds no bound method of itself (no reference
    cycle: what it cached is freed by reference counting when the request ends, see
    graphql_schema/execution/context.py). Made inside a request, on its running loop.
    """

    def __init__(self) -> None:
        super().__init__(loop=asyncio.get_running_loop())
        self.span_name = f"dataloader {type(self).__name__}"

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        with spans.span(
            spans.tracer("loaders"),
            self.span_name,
            {"dataloader.name": type(self).__name__, "dataloader.keys": len(keys)},
        ):
            # an Exception in place of a value is what that key's `load` raises
            return cast(list[V], list(await self.load_batch(keys)))

    async def load_batch(self, keys: list[K]) -> Sequence[V | Exception]:
        """Each key's value, or an Exception that its `load` raises."""
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

    async def load_batch(self, keys: list[K]) -> Sequence[V]:
        async with self._engine.connect() as conn:
            values = await self.fetch(conn, keys)
        self._done.update(zip(keys, values, strict=True))
        return values

    def put(self, values: dict[K, V]) -> None:
        """Values a parent's query already read (in the same statement as its own rows): later
        `load`s, `peek`s and `now_or_later`s of these keys need no batch of their own."""
        for key, value in values.items():
            if key not in self._done:
                self._done[key] = value
                self.prime(key, value)

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
