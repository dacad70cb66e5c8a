"""Micro-benchmark: Strawberry's DataLoader vs aiodataloader, batching the loads of one request.

`python -m bench.dataloaders` times what a resolver pays per `load()`: N concurrent loads of
distinct keys (one batch), with a batch function that does no I/O, so only loader overhead counts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import uvloop
from aiodataloader import DataLoader as AioDataLoader
from strawberry.dataloader import DataLoader as StrawberryDataLoader


async def batch(keys: list[int]) -> list[int]:
    return [k * 2 for k in keys]


class Aio(AioDataLoader):  # type: ignore[misc]
    async def batch_load_fn(self, keys: list[int]) -> list[int]:
        return await batch(keys)


def make_strawberry() -> Any:
    return StrawberryDataLoader(load_fn=batch)


def make_aio() -> Any:
    return Aio()


async def one_request(make: Callable[[], Any], n: int, dup: int) -> None:
    """A fresh loader (per request), `n` distinct keys each loaded `dup` times, as resolvers do."""
    loader = make()

    async def resolver(k: int) -> int:
        value: int = await loader.load(k)
        return value

    await asyncio.gather(*(resolver(k % n) for k in range(n * dup)))


async def load_many(make: Callable[[], Any], n: int, dup: int) -> None:
    loader = make()
    await loader.load_many([k % n for k in range(n * dup)])


async def timeit(fn: Callable[[], Coroutine[Any, Any, None]], rounds: int) -> float:
    for _ in range(20):
        await fn()
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            await fn()
        samples.append((time.perf_counter() - start) / rounds)
    return statistics.median(samples)


async def main(rounds: int) -> list[dict[str, Any]]:
    rows = []
    for n, dup in ((50, 1), (1000, 1), (1000, 20)):
        for mode, runner in (("gather of load()", one_request), ("load_many", load_many)):
            row: dict[str, Any] = {"keys": n, "loads": n * dup, "mode": mode}
            for name, make in (("strawberry", make_strawberry), ("aiodataloader", make_aio)):
                per_request = await timeit(partial(runner, make, n, dup), max(1, rounds // n))
                row[name + "_us_per_load"] = round(per_request * 1e6 / (n * dup), 2)
            rows.append(row)
    return rows


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dataloaders", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20000, help="loads per sample (roughly)")
    args = parser.parse_args()
    rows = uvloop.run(main(args.rounds))
    print("| keys | loads | mode | strawberry us/load | aiodataloader us/load |")
    print("|---:|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r['keys']} | {r['loads']} | {r['mode']} | {r['strawberry_us_per_load']} "
            f"| {r['aiodataloader_us_per_load']} |"
        )


if __name__ == "__main__":
    cli()
