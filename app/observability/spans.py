"""Spans through OpenTelemetry's public API: the SDK's own spans, nothing while tracing is off.

`tracer(scope)` is None while no SDK provider is set, so `span(None, ...)` does no span work at
all (it yields the API's `INVALID_SPAN`). Otherwise `span` starts the SDK's span with
`Tracer.start_span` (the provider's sampler decides: a sampled-out span is the SDK's
`NonRecordingSpan`, which still carries the trace id log lines show) and makes it current with
`context.attach` / `context.detach`, as `trace.use_span` does, without its generator context
managers; an escaping exception is recorded and sets the status, as `use_span` would.

A root span (no current span, no caller's context) of a provider `tracing.make_provider` built
(ids from `RootIds`, sampler `parentbased_traceidratio` below 1) is decided here first, as the
SDK's `TraceIdRatioBased` decides it (the trace id's low 64 bits below the ratio's bound): a
root sampled out is the API's `NonRecordingSpan` over a fresh random trace and span id, made
without the SDK's `start_span` (which costs about 12 us in a request: the parent lookups, both
samplers, the sampling result); a root sampled in is started by the SDK with that very trace
id (`RootIds` hands it over), so the SDK's sampler agrees and the span is the SDK's as before.
The HTTP middleware's root (`quiet=True`) sampled out is an `Unsampled` instead: no ids made
until asked, current in `_dropped` for our spans, the instrumentors and log lines
(`current_span()`), not in OpenTelemetry's context.

Tracers are looked up once per (scope, provider): `TracerProvider.get_tracer` builds a new one
on every call. `use_provider` sends our spans to a provider other than the global one (tests and
benchmarks: OpenTelemetry's API sets its global provider once per process). Inside `pinned()`
(a request: the HTTP middleware opens it) the global provider is looked up once, not by every
`tracer` call: while none is set, the API's `get_tracer_provider` looks its variable up in
`os.environ` each time, a KeyError raised and caught (about 10,000 instructions a call).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from random import getrandbits
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    ProxyTracerProvider,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from app.observability.recording import Lean, Provider, Recording

Tracer = trace.Tracer

_tracers: dict[str, tuple[trace.TracerProvider, Tracer | None]] = {}
# tracers whose provider's sampler is parent-based and never samples a child of a sampled-out
# local parent (every `parentbased_*` OTEL_TRACES_SAMPLER): such a child is not started at all
_skips_children: dict[int, bool] = {}
_chosen: trace.TracerProvider | None = None
# tracers whose roots `span` decides itself: (the ratio's bound, the provider's RootIds)
_roots: dict[int, tuple[int, RootIds]] = {}
# tracers of a `recording.Provider` sampling parent-based with a sampled local parent's child
# always sampled: their sampled spans are `Recording`s (see recording.py)
_leans: dict[int, Lean] = {}
_pinned: ContextVar[int] = ContextVar("bookbridge_root_trace_id", default=0)
# the global provider as `pinned` looked it up for the current request (None: outside one)
_global: ContextVar[trace.TracerProvider | None] = ContextVar(
    "bookbridge_global_tracer_provider", default=None
)
# the sampled-out span `span` made current (None: the current span is another or none), so a
# child, ours or an instrumentor's, finds it with one lookup instead of the context's
_dropped: ContextVar[trace.Span | None] = ContextVar("bookbridge_dropped_span", default=None)
_LOW_64 = TraceIdRatioBased.TRACE_ID_LIMIT
_DROPPED = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)  # as the SDK sets them
_SAMPLED = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_RATIO_ROOT = "ParentBased{root:TraceIdRatioBased{"


def _nonzero(bits: int) -> int:
    """A random id of `bits` bits that is not 0 (0 is the invalid id), as the SDK draws it."""
    found = 0
    while not found:
        found = getrandbits(bits)
    return found


def _span_id() -> int:
    return getrandbits(64) or _nonzero(64)


class Unsampled(trace.Span):
    """The root of a request the ratio sampled out, started with `quiet=True` (the HTTP
    middleware, for a request that brought no caller's context): its trace id is drawn (the
    decision was made on it), its span id and `SpanContext` are made only when something asks
    (a log line, a propagator), and it is current only in `_dropped`, not in OpenTelemetry's
    context (no context copy, attach or detach). Our spans and the instrumentors'
    (`ChildrenSkipped`) find it there and start nothing under it; log lines find it through
    `current_span()`. A sampled-out request pays for no span object it does not use: most
    requests at a ratio of 0.1 (docs/performance.md, trace7)."""

    __slots__ = ("made", "trace_id")

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.made: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        made = self.made
        if made is None:  # the SDK's flags for a sampled-out root, a span id drawn now
            made = self.made = SpanContext(self.trace_id, _span_id(), False, _DROPPED)
        return made

    def is_recording(self) -> bool:
        return False

    def end(self, end_time: int | None = None) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        return None

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        return None

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        return None


def current_span() -> trace.Span:
    """The current span, as `trace.get_current_span()` finds it, or a sampled-out request's
    root that is not in OpenTelemetry's context (`Unsampled`): what log lines show."""
    return _dropped.get() or trace.get_current_span()


class RootIds(RandomIdGenerator):
    """The SDK's random ids, except that the trace id `span` drew for a root it sampled in is
    the one the SDK's `start_span` then gets (set for that call only)."""

    def generate_trace_id(self) -> int:
        return _pinned.get() or super().generate_trace_id()


def use_provider(provider: trace.TracerProvider | None) -> None:
    """Start our spans from `provider` instead of the global one (None: the global one again)."""
    global _chosen  # noqa: PLW0603
    _chosen = provider


def tracer(scope: str, provider: trace.TracerProvider | None = None) -> Tracer | None:
    """The tracer of `scope` from `provider` (default: the one `use_provider` chose, else the
    global one); None while tracing is off (no SDK provider set), so callers can skip span
    work entirely."""
    provider = provider or _chosen or _global.get() or trace.get_tracer_provider()
    hit = _tracers.get(scope)
    if hit is not None and hit[0] is provider:
        return hit[1]
    found = None if isinstance(provider, ProxyTracerProvider) else provider.get_tracer(scope)
    if isinstance(found, trace.NoOpTracer):
        found = None
    if found is not None:
        _skips_children[id(found)] = _parent_based(provider)
        rule = _root_rule(provider, found)
        if rule is None:
            _roots.pop(id(found), None)
        else:
            _roots[id(found)] = rule
        if isinstance(provider, Provider) and _samples_children(provider):
            _leans[id(found)] = Lean(provider, scope)
        else:
            _leans.pop(id(found), None)
    _tracers[scope] = (provider, found)
    return found


class pinned:  # used like a function: `with pinned():`
    """The global tracer provider looked up once for the `with` block (a request): `tracer`
    calls inside it use that lookup; a provider set globally meanwhile is seen by the next
    block. A class, not a generator: the HTTP middleware opens one per request."""

    __slots__ = ("token",)
    token: Token[trace.TracerProvider | None]

    def __enter__(self) -> None:
        self.token = _global.set(trace.get_tracer_provider())

    def __exit__(self, *exc: object) -> None:
        _global.reset(self.token)


def _parent_based(provider: trace.TracerProvider) -> bool:
    """True when `provider` (the SDK's) samples as ParentBased with its default for a local
    parent that was sampled out: never a child of it."""
    sampler = getattr(provider, "sampler", None)
    if not isinstance(sampler, ParentBased):
        return False
    description: str = sampler.get_description()  # type: ignore[no-untyped-call]
    return "localParentNotSampled:AlwaysOffSampler" in description


def _samples_children(provider: trace.TracerProvider) -> bool:
    """True when `provider` (the SDK's) samples as ParentBased with its default for a sampled
    local parent: always a child of it."""
    sampler = getattr(provider, "sampler", None)
    if not isinstance(sampler, ParentBased):
        return False
    description: str = sampler.get_description()  # type: ignore[no-untyped-call]
    return "localParentSampled:AlwaysOnSampler" in description


class _Current:
    """`start_as_current_span`'s context manager for a child the sampler would drop: the
    sampled-out parent, current already, stands for it."""

    __slots__ = ("parent",)

    def __init__(self, parent: trace.Span) -> None:
        self.parent = parent

    def __enter__(self) -> trace.Span:
        return self.parent

    def __exit__(self, *exc: object) -> None:
        return None


def _dropped_parent(context: Context | None) -> trace.Span | None:
    """The current span when a child of it would be sampled out by a parent-based sampler
    (no caller's context given, the current span valid and not recording), else None."""
    if context is not None:
        return None
    dropped = _dropped.get()
    if dropped is not None:
        return dropped
    parent = trace.get_current_span()
    if parent.is_recording() or not parent.get_span_context().is_valid:
        return None
    return parent


class ChildrenSkippedTracer(trace.Tracer):
    """A tracer for third-party instrumentation (Redis, SQLAlchemy) under a parent-based
    sampler: a span started under a sampled-out parent is that parent (no ids, sampler or
    context switch; ending it does nothing), as `span` does for ours; else the SDK's span."""

    def __init__(self, inner: trace.Tracer) -> None:
        self.inner = inner

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = _dropped_parent(context)
        if parent is not None:
            return parent
        return self.inner.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Any:
        parent = _dropped_parent(context)
        if parent is not None:
            return _Current(parent)
        return self.inner.start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        )


class ChildrenSkipped(trace.TracerProvider):
    """`provider` for third-party instrumentation: its tracers skip the children of
    sampled-out parents (`ChildrenSkippedTracer`) when its sampler would drop them anyway
    (every `parentbased_*` OTEL_TRACES_SAMPLER); any other provider's tracers as they are."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self.skips = _parent_based(provider)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        found = self.provider.get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        return ChildrenSkippedTracer(found) if self.skips else found


def _root_rule(provider: trace.TracerProvider, found: Tracer) -> tuple[int, RootIds] | None:
    """(bound, ids) when `found` starts its roots from `RootIds` under a `ParentBased` sampler
    whose root sampler is `TraceIdRatioBased` below 1 (`parentbased_traceidratio`)."""
    ids = getattr(found, "id_generator", None)
    sampler = getattr(provider, "sampler", None)
    if not isinstance(ids, RootIds) or not isinstance(sampler, ParentBased):
        return None
    description: str = sampler.get_description()  # type: ignore[no-untyped-call]
    if not description.startswith(_RATIO_ROOT):
        return None
    try:
        rate = float(description[len(_RATIO_ROOT) :].split("}", 1)[0])
    except ValueError:
        return None
    bound = TraceIdRatioBased.get_bound_for_rate(rate)
    return (bound, ids) if bound <= _LOW_64 else None  # always sampled: the SDK's way


def _root(
    tracer: Tracer,
    bound: int,
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any] | None,
    current: Context,
    quiet: bool = False,
) -> trace.Span:
    """A root span of a tracer whose roots `span` decides (`_roots`), as the SDK would start
    it: the SDK's RandomIdGenerator's ids (random.getrandbits, never 0), drawn here without its
    two calls per id; sampled out, as TraceIdRatioBased decides, a `NonRecordingSpan` (with
    `quiet`, an `Unsampled` over the same trace id)."""
    trace_id = getrandbits(128) or _nonzero(128)
    if trace_id & _LOW_64 >= bound:
        if quiet:
            return Unsampled(trace_id)
        return NonRecordingSpan(SpanContext(trace_id, _span_id(), False, _DROPPED))
    lean = _leans.get(id(tracer))
    if lean is not None:
        ids = SpanContext(trace_id, _span_id(), False, _SAMPLED)
        return Recording(lean, name, ids, None, kind, attributes, current)
    pinned = _pinned.set(trace_id)
    try:
        return tracer.start_span(name, current, kind, attributes)
    finally:
        _pinned.reset(pinned)


class span:  # used like a function: `with span(tracer, "name"):`
    """Start a span and make it current for the `with` block; records an escaping exception.

    `context` is the parent's context (an incoming traceparent); default: the current one.
    `quiet`: a root this module samples out is an `Unsampled`, current in `_dropped` only (the
    HTTP middleware's request span: nothing there reads OpenTelemetry's current span but log
    lines, which use `current_span()`)."""

    __slots__ = ("base", "mark", "shared", "span", "token")
    span: trace.Span
    base: Context | None  # the context the span was started in (None: the current one)
    token: Token[Context] | None
    mark: Token[trace.Span | None] | None  # `_dropped` as it was before `__enter__`
    shared: bool  # the sampled-out parent's span, current already

    def __init__(
        self,
        tracer: Tracer | None,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        context: Context | None = None,
        quiet: bool = False,
    ) -> None:
        self.token = None
        self.mark = None
        self.shared = False
        if tracer is None:
            self.span = trace.INVALID_SPAN
            return
        if context is None:
            dropped = _dropped.get()
            if dropped is not None and _skips_children.get(id(tracer)):
                # sampled out: the sampler would drop the child; the parent stands for it
                # (its trace id in log lines), with no span, ids or context switch for it
                self.span = dropped
                self.shared = True
                return
            # the current context, looked up once: its span is the parent, and `__enter__`
            # makes the new span current in a copy of it (an empty one has no span)
            current = self.base = context_api.get_current()
            parent: trace.Span = trace.INVALID_SPAN
            above = INVALID_SPAN_CONTEXT
            if current:
                parent = trace.get_current_span(current)
                above = parent.get_span_context()
            if above.is_valid:
                if not parent.is_recording():
                    if _skips_children.get(id(tracer)):  # a sampled-out span not made by `span`
                        self.span = parent
                        self.shared = True
                        return
                elif above.trace_flags & 1 and not above.is_remote:
                    lean = _leans.get(id(tracer))
                    if lean is not None:  # sampled, as the parent-based sampler decides
                        flags = _SAMPLED if above.trace_flags & 2 else TraceFlags(1)
                        ids = SpanContext(
                            above.trace_id, _span_id(), False, flags, above.trace_state
                        )
                        self.span = Recording(lean, name, ids, above, kind, attributes, current)
                        return
            elif (rule := _roots.get(id(tracer))) is not None:  # a root: decided here
                self.span = _root(tracer, rule[0], name, kind, attributes, current, quiet)
                return
            self.span = tracer.start_span(name, current, kind, attributes)
            return
        self.base = None
        self.span = tracer.start_span(name, context=context, kind=kind, attributes=attributes)

    def __enter__(self) -> trace.Span:
        found = self.span
        if type(found) is Unsampled:  # current for our spans and log lines, not in the context
            self.mark = _dropped.set(found)
            return found
        if found is not trace.INVALID_SPAN and not self.shared:
            # also when sampled out: children then see a sampled-out parent and stay out too
            self.token = context_api.attach(trace.set_span_in_context(found, self.base))
            kind = type(found)
            if kind is NonRecordingSpan or (kind is not Recording and not found.is_recording()):
                self.mark = _dropped.set(found)
            elif _dropped.get() is not None:  # a recording span under a sampled-out one
                self.mark = _dropped.set(None)
        return found

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self.token
        if token is None:
            if self.mark is not None:  # an `Unsampled` root
                _dropped.reset(self.mark)
                self.mark = None
            return
        self.token = None
        found = self.span
        try:
            if found.is_recording():
                if exc is not None:
                    found.record_exception(exc)
                    found.set_status(
                        Status(StatusCode.ERROR, f"{typ.__name__ if typ else ''}: {exc}")
                    )
                found.end()
        finally:
            if self.mark is not None:
                _dropped.reset(self.mark)
                self.mark = None
            context_api.detach(token)
