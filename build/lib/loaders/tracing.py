"""A span per dataloader batch: the loader's name and the batch size, never the keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from app.observability import spans

K = TypeVar("K")
V = TypeVar("V")


def traced_batch(
    name: str, load: Callable[[list[K]], Awaitable[Sequence[V]]]
) -> Callable[[list[K]], Awaitable[Sequence[V]]]:
    async def batch(keys: list[K]) -> Sequence[V]:
        with spans.span(
            spans.tracer("loaders"),
            f"dataloader {name}",
            {"dataloader.name": name, "dataloader.keys": len(keys)},
        ):
            return await load(keys)

    return batch
