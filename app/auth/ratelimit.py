"""Cost-weighted rate limits per key or user: a one-minute window in Redis, else in-process."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.core.deadline import within

WINDOW_SECONDS = 60
_SCRIPT = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return used
"""


@dataclass(slots=True)
class Verdict:
    allowed: bool
    used: int
    limit: int
    retry_after: int


@dataclass(slots=True)
class RateLimiter:
    """Counts cost per subject per minute; Redis when given (shared by replicas), else local.

    After a Redis failure (down, or hung past `timeout` while the event loop keeps up, past
    `busy_limit` while it is behind: `app.core.deadline`) it counts locally for
    `retry_seconds` before trying Redis again, as the recommendation cache does, so a hung
    Redis costs one timeout per `retry_seconds`, not one per request."""

    local: dict[tuple[str, int], int] = field(default_factory=dict)
    retry_seconds: float = 1.0
    timeout: float = 0.05
    busy_limit: float = 0.5
    redis_failures: int = 0
    _skip_until: float = 0.0

    async def hit(self, redis: Redis | None, subject: str, cost: int, limit: int) -> Verdict:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now))
        used = await self._count(redis, subject, window, cost)
        return Verdict(used <= limit, used, limit, retry_after)

    async def _count(self, redis: Redis | None, subject: str, window: int, cost: int) -> int:
        if redis is not None and time.monotonic() >= self._skip_until:
            try:
                # Hashed: a student's id never appears in Redis keys.
                key = f"bb:rl:{hashlib.sha256(subject.encode()).hexdigest()[:20]}:{window}"
                used = await within(
                    redis.eval(_SCRIPT, 1, key, cost, WINDOW_SECONDS + 5),
                    self.timeout,
                    self.busy_limit,
                )
                return int(used)
            except (RedisError, OSError, TimeoutError):
                # Redis down or hung: count locally rather than refuse everyone, for a while
                self.redis_failures += 1
                self._skip_until = time.monotonic() + self.retry_seconds
        if len(self.local) > 100_000:
            self.local = {k: v for k, v in self.local.items() if k[1] >= window}
        key_local = (subject, window)
        self.local[key_local] = self.local.get(key_local, 0) + cost
        return self.local[key_local]
