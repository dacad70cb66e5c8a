"""A time budget for a call to another service that tells a slow service from a busy event loop.

A reply is only read when this process's event loop gets to it. Under load (one worker, dozens
of requests in flight, a garbage collection) a reply that arrived in a millisecond can wait tens
of milliseconds for its turn; a plain `asyncio.wait_for(call, 0.05)` then calls that a timeout
and the caller treats a healthy Redis as down. `within` gives the call `budget` seconds, and
when they are spent asks the loop for one turn: a quick turn means any reply that had arrived
would have been read, so the service is the slow one (TimeoutError, as before); a slow turn means
the loop is behind, so the call gets another `budget`, up to `limit` seconds in all, after which
it fails whatever the reason. A hung service thus costs `budget` (and a fifth of it as grace)
on an idle loop, at most `limit` on a busy one. No task is created: the call runs in the caller's task under
`asyncio.timeout`, whose deadline the budget moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
# A turn of the loop longer than this share of the budget means the loop is behind.
BUSY_SHARE = 0.2


class _Budget:
    __slots__ = ("handle", "loop", "scope", "timeout")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, scope: asyncio.Timeout, timeout: float
    ) -> None:
        self.loop = loop
        self.scope = scope
        self.timeout = timeout
        self.handle: asyncio.Handle = loop.call_later(timeout, self._spent)

    def _spent(self) -> None:
        """The budget is spent: time one turn of the loop before deciding."""
        self.handle = self.loop.call_soon(self._probe, self.loop.time())

    def _probe(self, asked: float) -> None:
        now = self.loop.time()
        grace = self.timeout * BUSY_SHARE
        if now - asked < grace:
            # The loop keeps up: the service is slow; give up, after a short grace in which
            # a reply that came with this very turn (its read is queued behind the probe) is
            # still read.
            self.scope.reschedule(now + grace)
        else:  # the loop is behind: a reply may be waiting its turn; another budget
            self.handle = self.loop.call_later(self.timeout, self._spent)


async def within(call: Awaitable[T], budget: float, limit: float) -> T:
    """`call`'s result; TimeoutError once it has taken `budget` seconds while the event loop
    kept up, or `limit` seconds in any case (`limit` below `budget` counts as `budget`)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout_at(loop.time() + max(budget, limit)) as scope:
        watch = _Budget(loop, scope, budget)
        try:
            return await call
        finally:
            watch.handle.cancel()
