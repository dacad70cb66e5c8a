"""Spans at the cost of what they record: nothing when tracing is off, little when unsampled.

`Tracer.start_as_current_span` nests three generator context managers (the global proxy's,
the SDK tracer's and `use_span`), and `TracerProvider.get_tracer` builds a new tracer on every
call. On a response-cache hit (about 0.1 ms of work) that was most of the measured cost of
tracing at a 0.1 sampling ratio (`python -m bench --tracing`, docs/performance.md). `span()`
starts the span and makes it current with one small class instead, and tracers are looked up
once per provider.

Most requests are sampled out, so that path is made cheap too, when the provider is one
`tracing.make_provider` built with the usual `parentbased_traceidratio` sampler:

- a root span draws its trace id and applies the sampler's own rule (the low 64 bits of the
  trace id under the ratio's bound). Sampled out, it becomes a `NonRecordingSpan` carrying that
  trace id (log lines still show it), without the SDK's sampler objects. Sampled in, the SDK
  starts it as usual, with that very trace id (`PresetIds`), so the decision is the sampler's.
- a span under a sampled-out local parent is the parent itself: the SDK would make another
  `NonRecordingSpan` that records nothing either.

Any other sampler, provider or parent goes through the SDK unchanged.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode

_LOW_64 = TraceIdRatioBased.TRACE_ID_LIMIT
# what the SDK gives a sampled-out root span: not sampled, trace id random (W3C level 2)
_UNSAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT | trace.TraceFlags.RANDOM_TRACE_ID)


class PresetIds(RandomIdGenerator):
    """Random ids, except that the next trace id of a thread can be set beforehand: a root
    span sampled by `span` keeps the trace id its sampling decision was made on. (Another
    thread's root in between takes a random id instead: still a fair draw of the sampler.)"""

    def __init__(self) -> None:
        self._preset: tuple[int, int] | None = None  # (thread, trace id)

    def preset(self, trace_id: int) -> None:
        self._preset = (threading.get_ident(), trace_id)

    def generate_trace_id(self) -> int:
        preset = self._preset
        if preset is not None and preset[0] == threading.get_ident():
            self._preset = None
            return preset[1]
        return super().generate_trace_id()


def _random_id(bits: int) -> int:
    """What RandomIdGenerator draws (never the invalid id 0)."""
    found = random.getrandbits(bits)
    while not found:
        found = random.getrandbits(bits)
    return found


def root_bound(sampler: Sampler) -> int | None:
    """The trace-id bound of a `ParentBased(TraceIdRatioBased)` sampler whose parent delegates
    are the defaults (follow the parent's flag), else None: no fast path for it."""
    if not isinstance(sampler, ParentBased):
        return None
    delegates = (
        getattr(sampler, "_remote_parent_sampled", None),
        getattr(sampler, "_remote_parent_not_sampled", None),
        getattr(sampler, "_local_parent_sampled", None),
        getattr(sampler, "_local_parent_not_sampled", None),
    )
    root = getattr(sampler, "_root", None)
    if delegates != (ALWAYS_ON, ALWAYS_OFF, ALWAYS_ON, ALWAYS_OFF):
        return None
    return root.bound if isinstance(root, TraceIdRatioBased) else None


class Tracer:
    """An SDK tracer, and what its fast path needs (None when it has none)."""

    __slots__ = ("bound", "ids", "sdk")

    def __init__(self, sdk: trace.Tracer) -> None:
        self.sdk = sdk
        ids = getattr(sdk, "id_generator", None)
        bound = root_bound(sdk.sampler) if isinstance(sdk, SdkTracer) else None
        fast = isinstance(ids, PresetIds) and bound is not None
        self.ids: PresetIds | None = ids if fast else None
        self.bound: int = bound if fast and bound is not None else -1


_tracers: dict[str, tuple[trace.TracerProvider, Tracer | None]] = {}


def tracer(scope: str, provider: trace.TracerProvider | None = None) -> Tracer | None:
    """The tracer of `scope` from `provider` (default: the global one); None while tracing is
    off (no SDK provider set), so callers can skip span work entirely."""
    provider = provider or trace.get_tracer_provider()
    hit = _tracers.get(scope)
    if hit is not None and hit[0] is provider:
        return hit[1]
    found = None if isinstance(provider, ProxyTracerProvider) else provider.get_tracer(scope)
    wrapped = None if found is None or isinstance(found, trace.NoOpTracer) else Tracer(found)
    _tracers[scope] = (provider, wrapped)
    return wrapped


class span:  # used like a function: `with span(tracer, "name"):`
    """Start a span and make it current for the `with` block; records an escaping exception."""

    __slots__ = ("_own", "_span", "_token")

    def __init__(
        self,
        tracer: Tracer | None,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
    ) -> None:
        self._token: object | None = None
        self._span: trace.Span = trace.INVALID_SPAN
        self._own = False  # a span of its own to make current and end
        if tracer is None:
            return
        self._own = True
        ids = tracer.ids
        if ids is not None:
            parent = trace.get_current_span(context).get_span_context()
            if not parent.is_valid:
                trace_id = _random_id(128)
                if trace_id & _LOW_64 >= tracer.bound:  # the ratio sampler says no
                    self._span = trace.NonRecordingSpan(
                        trace.SpanContext(trace_id, _random_id(64), False, _UNSAMPLED)
                    )
                    return
                ids.preset(trace_id)
            elif not parent.trace_flags.sampled and not parent.is_remote and context is None:
                self._span, self._own = trace.get_current_span(), False  # already current
                return
        self._span = tracer.sdk.start_span(name, context=context, kind=kind, attributes=attributes)

    def __enter__(self) -> trace.Span:
        if self._own:
            # also when unsampled: children then see a sampled-out parent and stay out too
            self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        current = self._span
        if exc is not None and current.is_recording():
            current.record_exception(exc)
            current.set_status(Status(StatusCode.ERROR, f"{typ.__name__ if typ else ''}: {exc}"))
        current.end()
        context_api.detach(self._token)  # type: ignore[arg-type]
