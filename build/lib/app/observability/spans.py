"""Spans at the cost of what they record: nothing when tracing is off, little when unsampled.

`Tracer.start_as_current_span` nests three generator context managers (the global proxy's,
the SDK tracer's and `use_span`), and `TracerProvider.get_tracer` builds a new tracer on every
call. On a response-cache hit (about 0.1 ms of work) that was most of the measured cost of
tracing at a 0.1 sampling ratio (`python -m bench --tracing`, docs/performance.md). `span()`
starts the span and makes it current with one small class instead, and tracers are looked up
once per provider.

When the provider is one `tracing.make_provider` built (`FastPathIds`) with a parent-based
sampler whose root is a trace-id ratio, always on or always off (`parentbased_traceidratio`,
the SDK's default `parentbased_always_on`, ...), `span` samples and starts spans itself:

- a root span draws its trace id and applies the sampler's own rule (the low 64 bits of the
  trace id under the ratio's bound). Sampled out, it becomes a `NonRecordingSpan` carrying that
  trace id (log lines still show it), whose span context is built only when something asks.
- a span under a sampled-out local parent is the parent itself: the SDK would make another
  `NonRecordingSpan` that records nothing either.
- a sampled span (a root sampled in, or any child of a sampled parent, local or remote) is a
  `_Recorded`: the fields the SDK's span records, without its locks, bounded containers and
  end-time copy, ended into the provider's processors as the SDK's are.
  `tests/test_ops_telemetry.py` checks that processors and the OTLP request see the same spans
  from either path (every span test runs on both), and the sampled set the SDK would pick.
- a span becomes current with one `ContextVar.set` on OpenTelemetry's own context variable
  (`_runtime`), falling back to the context API.

Measured in-process (docs/performance.md, "Fourth pass"): a sampled-out request paid 5.4 us
for its span, 3.4 us after the first and last points; a sampled one (spans dropped at export)
28-29 us before `_Recorded` and 7-8 us after, plus ~15 us of OTLP encoding in the exporter
thread either way.
Not done here: span limits (our spans carry a handful of attributes) and the SDK's own
span-count metrics, which are no-ops without a meter provider.

Any other sampler, provider or parent goes through the SDK unchanged.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import ProxyTracerProvider, SpanKind, Status, StatusCode
from opentelemetry.trace import propagation as trace_propagation

_LOW_64 = TraceIdRatioBased.TRACE_ID_LIMIT
_getrandbits = random.getrandbits
# what the SDK gives a sampled-out root span: not sampled, trace id random (W3C level 2)
_UNSAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT | trace.TraceFlags.RANDOM_TRACE_ID)


class FastPathIds(RandomIdGenerator):
    """Random ids, as the SDK's default; marks a provider `tracing.make_provider` built, whose
    spans `span` may start itself (the ids it draws are as random as the SDK's)."""


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
    if root is ALWAYS_ON:  # the SDK's default sampler, parentbased_always_on
        return _LOW_64 + 1
    if root is ALWAYS_OFF:
        return 0
    return root.bound if isinstance(root, TraceIdRatioBased) else None


class Tracer:
    """An SDK tracer, and what its fast path needs (None when it has none)."""

    __slots__ = ("bound", "ids", "processor", "resource", "scope", "sdk")

    def __init__(self, sdk: trace.Tracer, scope: str = "") -> None:
        self.sdk = sdk
        ids = getattr(sdk, "id_generator", None)
        bound = root_bound(sdk.sampler) if isinstance(sdk, SdkTracer) else None
        processor = getattr(sdk, "span_processor", None)
        resource = getattr(sdk, "resource", None)
        fast = (
            isinstance(ids, FastPathIds)
            and bound is not None
            and isinstance(processor, SpanProcessor)
            and isinstance(resource, Resource)
        )
        self.ids: FastPathIds | None = ids if fast else None
        self.bound: int = bound if fast and bound is not None else -1
        self.processor = processor if isinstance(processor, SpanProcessor) else SpanProcessor()
        self.resource = resource if isinstance(resource, Resource) else Resource.get_empty()
        self.scope = InstrumentationScope(scope)


_tracers: dict[str, tuple[trace.TracerProvider, Tracer | None]] = {}


def tracer(scope: str, provider: trace.TracerProvider | None = None) -> Tracer | None:
    """The tracer of `scope` from `provider` (default: the global one); None while tracing is
    off (no SDK provider set), so callers can skip span work entirely."""
    provider = provider or trace.get_tracer_provider()
    hit = _tracers.get(scope)
    if hit is not None and hit[0] is provider:
        return hit[1]
    found = None if isinstance(provider, ProxyTracerProvider) else provider.get_tracer(scope)
    wrapped = None if found is None or isinstance(found, trace.NoOpTracer) else Tracer(found, scope)
    _tracers[scope] = (provider, wrapped)
    return wrapped


def _runtime() -> tuple[ContextVar[Context], str] | None:
    """The ContextVar behind OpenTelemetry's current context, and the key spans sit under, when
    the runtime context is the default one (contextvars): a span then becomes current with one
    `ContextVar.set` instead of six calls through the context API. This reads two names the API
    keeps private; if either is missing or the runtime is another (OTEL_PYTHON_CONTEXT), `span`
    goes through the public API instead (`tests/test_ops_telemetry.py` checks both agree)."""
    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    key = getattr(trace_propagation, "_SPAN_KEY", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(var, ContextVar) and key:
        return var, key
    return None


_RUNTIME = _runtime()


class _SampledOut(trace.NonRecordingSpan):
    """A root the ratio sampler said no to. It has its trace id (the one the decision was made
    on); its span context, span id included, is made the first time one is asked for: by a log
    line or an SDK child. Most sampled-out requests never ask."""

    def __init__(self, trace_id: int) -> None:
        self._trace_id = trace_id
        self._context: trace.SpanContext | None = None  # type: ignore[assignment]

    def get_span_context(self) -> trace.SpanContext:
        context = self._context
        if context is None:
            context = self._context = trace.SpanContext(
                self._trace_id, _random_id(64), False, _UNSAMPLED
            )
        return context


_PLAIN = (str, bool, int, float)


def _cleaned(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """`attributes` as the SDK's span keeps them: plain values as they are (nearly every call),
    anything else by the API's own rules (`BoundedAttributes`: sequences become tuples, ...)."""
    if all(isinstance(v, _PLAIN) for v in attributes.values()):
        return dict(attributes)
    return dict(BoundedAttributes(attributes=attributes))


_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED | trace.TraceFlags.RANDOM_TRACE_ID)
_SAMPLED_PARENT_NOT_RANDOM = trace.TraceFlags(trace.TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)


class _Recorded(trace.Span, ReadableSpan):
    """A sampled span of ours: what the SDK's `Span` records, handed to the same processors,
    without its per-span locks, bounded containers and end-time copy. One coroutine writes a
    span of ours and every attribute it sets is a plain value, so neither is needed; a span
    that ended is the `ReadableSpan` its processors get, as it is never written again."""

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        context: trace.SpanContext,
        parent: trace.SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        parent_context: Context | None,
    ) -> None:
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._resource = tracer.resource
        self._instrumentation_scope = tracer.scope
        self._instrumentation_info = None
        self._kept: dict[str, Any] = _cleaned(attributes) if attributes else {}
        self._attributes = self._kept  # what ReadableSpan.attributes reads
        self._events: list[Event] = []
        self._links = ()
        self._status = _UNSET
        self._processor = tracer.processor
        self._end_time = None
        self._start_time = time.time_ns()
        # processors get what the SDK's span offers them: the Span API and ReadableSpan
        self._processor.on_start(self, parent_context=parent_context)  # type: ignore[arg-type]

    def get_span_context(self) -> trace.SpanContext:
        return self._context  # type: ignore[return-value]  # always set

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        if self._end_time is None:
            if isinstance(value, _PLAIN):
                self._kept[key] = value
            else:
                self._kept.update(_cleaned({key: value}))

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._end_time is None:
            self._kept.update(_cleaned(attributes))

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is None:
            kept = BoundedAttributes(attributes=attributes, immutable=True)  # cleaned, as the SDK
            self._events.append(Event(name, kept, timestamp))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return  # as the SDK: OK is final
        if not isinstance(status, Status):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        found = {
            "exception.type": f"{module}.{kind.__qualname__}"
            if module and module != "builtins"
            else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        self.add_event("exception", found | dict(attributes or {}), timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time.time_ns()
        self._processor.on_end(self)


class span:  # used like a function: `with span(tracer, "name"):`
    """Start a span and make it current for the `with` block; records an escaping exception."""

    __slots__ = ("_own", "_span", "_token")
    _own: bool
    _span: trace.Span
    _token: Token[Context] | None

    def __init__(
        self,
        tracer: Tracer | None,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
    ) -> None:
        self._token = None
        if tracer is None:
            self._span, self._own = trace.INVALID_SPAN, False
            return
        self._own = True  # a span of its own to make current and end
        ids = tracer.ids
        if ids is not None:
            if _RUNTIME is not None and context is None:
                current = _RUNTIME[0].get().get(_RUNTIME[1])
                if type(current) is _SampledOut:
                    self._span, self._own = current, False  # a child of it: itself, current
                    return
                if current is not None and not isinstance(current, trace.Span):
                    current = None
            else:
                current = trace.get_current_span(context)
            parent = None if current is None else current.get_span_context()
            if parent is None or not parent.is_valid:
                trace_id = _getrandbits(128) or _random_id(128)
                if trace_id & _LOW_64 >= tracer.bound:  # the ratio sampler says no
                    self._span = _SampledOut(trace_id)
                    return
                ids_context = trace.SpanContext(trace_id, _random_id(64), False, _SAMPLED)
                self._span = _Recorded(tracer, name, ids_context, None, kind, attributes, context)
                return
            if parent.trace_flags.sampled:  # ParentBased: a sampled parent's child is sampled
                flags = (
                    _SAMPLED if parent.trace_flags.random_trace_id else _SAMPLED_PARENT_NOT_RANDOM
                )
                ids_context = trace.SpanContext(
                    parent.trace_id, _random_id(64), False, flags, parent.trace_state
                )
                self._span = _Recorded(tracer, name, ids_context, parent, kind, attributes, context)
                return
            if not parent.is_remote and context is None and current is not None:
                self._span, self._own = current, False  # already current
                return
        self._span = tracer.sdk.start_span(name, context=context, kind=kind, attributes=attributes)

    def __enter__(self) -> trace.Span:
        if self._own:
            # also when unsampled: children then see a sampled-out parent and stay out too
            if _RUNTIME is not None:
                var, key = _RUNTIME
                values = var.get().copy()
                values[key] = self._span
                self._token = var.set(Context(values))
            else:
                self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._token
        if token is None:
            return
        current = self._span
        if type(current) is not _SampledOut:  # nothing to record or end on that one
            if exc is not None and current.is_recording():
                current.record_exception(exc)
                current.set_status(
                    Status(StatusCode.ERROR, f"{typ.__name__ if typ else ''}: {exc}")
                )
            current.end()
        if _RUNTIME is not None:
            _RUNTIME[0].reset(token)
        else:
            context_api.detach(token)
