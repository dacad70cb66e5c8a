"""A time budget for a call to another service that tells a slow service from a busy event loop.

A reply is only read when this process's event loop gets to it. Under load (one worker, dozens
of requests in flight, a garbage collection, the process descheduled) a reply that arrived in a
millisecond can wait tens of milliseconds for its turn; a plain `asyncio.wait_for(call, 0.05)`
then calls that a timeout and the caller treats a healthy Redis as down. `within` gives the call
`budget` seconds and, when they are spent, looks at how far behind the loop runs (how late that
timer fired, plus one more turn): a loop on time would have read any reply that had arrived, so
the service is the slow one (TimeoutError, as before, after a grace of a fifth of the budget); a
loop behind gives the call another `budget`, up to `limit` seconds in all, after which it fails
whatever the reason. A hung service thus costs about `budget` on an idle loop, at most `limit`
on a busy one. No task is created: the call runs in the caller's task under `asyncio.timeout`,
whose deadline the budget moves. A call that reached `limit` while the loop was still behind
at its last look raises `LoopBehind` (a TimeoutError): the caller cannot tell a slow service
from its own loop's lag there, and may choose not to treat the service as down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
# A turn of the loop longer than this share of the budget means the loop is behind.
BUSY_SHARE = 0.2


class LoopBehind(TimeoutError):
    """`within`'s limit was reached while the event loop was behind: not known to be the
    service's fault."""


class _Budget:
    __slots__ = ("behind", "due", "handle", "loop", "scope", "timeout")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, scope: asyncio.Timeout, timeout: float
    ) -> None:
        self.loop = loop
        self.scope = scope
        self.timeout = timeout
        self.due = loop.time() + timeout
        self.behind = False  # what the last look at the loop found
        self.handle: asyncio.Handle = loop.call_at(self.due, self._spent)

    def _spent(self) -> None:
        """The budget is spent: one more turn of the loop before deciding."""
        self.handle = self.loop.call_soon(self._probe)

    def _probe(self) -> None:
        # How far behind the loop runs: how late the budget's timer fired (a long step, a
        # garbage collection, the process descheduled) plus the turn it took to get here.
        if self.scope.expired():  # the limit came first: the call is being cancelled already
            return
        now = self.loop.time()
        grace = self.timeout * BUSY_SHARE
        self.behind = now - self.due >= grace
        if not self.behind:
            # The loop keeps up: the service is slow; give up, after a short grace in which
            # a reply that came with this very turn (its read is queued behind the probe) is
            # still read.
            self.scope.reschedule(now + grace)
        else:  # the loop is behind: a reply may be waiting its turn; another budget
            self.due = now + self.timeout
            self.handle = self.loop.call_at(self.due, self._spent)


async def within(call: Awaitable[T], budget: float, limit: float) -> T:
    """`call`'s result; TimeoutError once it has taken `budget` seconds while the event loop
    kept up, or `limit` seconds in any case (`limit` below `budget` counts as `budget`):
    `LoopBehind` when the loop was behind at the last look."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time() + max(budget, limit)) as scope:
            watch = _Budget(loop, scope, budget)
            try:
                return await call
            finally:
                watch.handle.cancel()
    except TimeoutError:
        if watch.behind:
            raise LoopBehind from None
        raise
