"""OpenTelemetry spans for recommendation work: the resolver, its cache lookups and its SQL."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from opentelemetry import trace

_override: trace.TracerProvider | None = None


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send recommendation spans to this provider instead of the global one (None: global)."""
    global _override  # noqa: PLW0603
    _override = provider


def tracer() -> trace.Tracer:
    return (_override or trace.get_tracer_provider()).get_tracer("bookbridge.reco")


P = ParamSpec("P")
R = TypeVar("R")


def sql_span(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap one data-access query in a span `reco.sql.<name>` (db.system=postgresql)."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracer().start_as_current_span(
                f"reco.sql.{name}", attributes={"db.system": "postgresql", "db.operation": name}
            ):
                return await fn(*args, **kwargs)

        return inner

    return wrap
