"""Retry policy for sync requests: which failures are transient, exponential backoff, full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(slots=True)
class RetryPolicy:
    """`max_attempts` tries in all; before try n+1 sleep uniform(0, min(cap, base * 2**n)),
    or the server's Retry-After when it sent one (capped at `max_retry_after`)."""

    max_attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))


def retry_after(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUS or status >= 500


UNAVAILABLE = "SERVICE_UNAVAILABLE"


def unavailable_only(response: httpx.Response) -> bool:
    """True for a GraphQL answer whose errors all say SERVICE_UNAVAILABLE (the database was
    unreachable): transient, whatever its HTTP status (older servers answered 200)."""
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return False
    return all(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == UNAVAILABLE
        for e in errors
    )
