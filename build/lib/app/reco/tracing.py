"""OpenTelemetry spans for recommendation work: the resolver, its cache lookups and its SQL."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from opentelemetry import trace

from app.observability import spans

_override: trace.TracerProvider | None = None


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Send recommendation spans to this provider instead of the global one (None: global)."""
    global _override  # noqa: PLW0603
    _override = provider


def span(name: str, attributes: Mapping[str, Any] | None = None) -> spans.span:
    """A current span `name` for the `with` block (nothing while tracing is off)."""
    return spans.span(spans.tracer("bookbridge.reco", _override), name, attributes)


P = ParamSpec("P")
R = TypeVar("R")


def sql_span(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap one data-access query in a span `reco.sql.<name>` (db.system=postgresql)."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(f"reco.sql.{name}", {"db.system": "postgresql", "db.operation": name}):
                return await fn(*args, **kwargs)

        return inner

    return wrap
