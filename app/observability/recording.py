"""A lean recording span for our own sampled spans, handed to the provider's processors when
it ends: to ours (`batch.BatchProcessor`) as it is, to any other as the SDK's `ReadableSpan`.

The SDK's recording span (`Tracer.start_span` with its sampler, `Span` with its locked
`BoundedAttributes`, the `ReadableSpan` copy at `end`) runs about 110 Python calls a span; this
one, for a provider `tracing.make_provider` built (a `Provider`: its processors known), keeps
attributes in a plain dict and runs about 15. What processors and exporters receive carries
what the SDK's span would: name, ids, parent, kind, attributes cleaned and bounded by the SDK's
`BoundedAttributes` under the provider's `SpanLimits` when they are not plain values or exceed
the limit, events, status (OK is final), start and end, resource and scope. Our batch processor
takes the ended `Recording` itself (no `ReadableSpan` built: the OTLP exporter encodes it as
one, `otlp.span`; any other exporter gets `readable()`, built on the export thread); another
processor (the tests' `SimpleSpanProcessor`s) gets `readable()` at `end`, as before.
`spans.span` starts it only where the sampler's decision is known without asking (a root the
ratio samples in, a child of a sampled local parent under `parentbased_*`); anything else is the
SDK's span.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, MutableMapping
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util import types

from app.observability.batch import BatchProcessor

log = logging.getLogger(__name__)

_PLAIN = frozenset({str, bool, int, float})
_UNSET = Status(StatusCode.UNSET)


class Provider(TracerProvider):
    """The SDK's TracerProvider that also keeps the processors added to it, in order, so our
    lean spans can be handed to them (the SDK keeps its own list private): our batch processors
    (`ours`: they take a `Recording` itself) apart from any other (`others`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ours: list[BatchProcessor] = []
        self.others: list[SpanProcessor] = []
        self.limits = SpanLimits()

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        if isinstance(span_processor, BatchProcessor):
            self.ours.append(span_processor)
        else:
            self.others.append(span_processor)


class Lean:
    """What a lean span of one tracer needs: its provider's resource, processors and limits, and
    the tracer's instrumentation scope (as the SDK's tracer of that name has it)."""

    __slots__ = ("limits", "others", "ours", "resource", "scope")

    def __init__(self, provider: Provider, scope: str) -> None:
        self.resource: Resource = provider.resource
        self.ours = provider.ours  # the provider's lists: a processor added later is seen
        self.others = provider.others
        self.limits = provider.limits
        self.scope = InstrumentationScope(scope, "", None, None)  # as get_tracer(scope) has it


class Recording(trace.Span):
    """A sampled span. At `end` our batch processors take it as it is (its fields are those
    of a `ReadableSpan` the encoder reads: `otlp.span`), any other processor gets the SDK's
    `ReadableSpan` of it (`readable`)."""

    __slots__ = (
        "attributes",
        "context",
        "dropped_attributes",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "lean",
        "links",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )
    dropped_events = 0  # as the ReadableSpan `readable` builds says (its events are a tuple)
    dropped_links = 0
    attributes: MutableMapping[str, Any]
    events: list[Event]
    resource: Resource
    instrumentation_scope: InstrumentationScope

    def __init__(
        self,
        lean: Lean,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        parent_context: Context | None,
    ) -> None:
        self.lean = lean
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes = kept = {}
        self.events = []
        self.links: list[Link] = []
        self.status = _UNSET
        self.end_time: int | None = None
        if attributes:
            for key, value in attributes.items():  # `set_attribute`, its common case inline
                if type(value) in _PLAIN and key:
                    kept[key] = value
                else:
                    self.set_attribute(key, value)
        self.start_time = time_ns()
        for processor in lean.others:  # ours do nothing on start
            processor.on_start(self, parent_context)  # type: ignore[arg-type]

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self.end_time is not None:
            log.warning("Setting attribute on ended span.")
            return
        if type(value) in _PLAIN and key:
            self.attributes[key] = value
            return
        cleaned = BoundedAttributes(None, {key: value}, immutable=False)  # the SDK's cleaning
        if key in cleaned:
            self.attributes[key] = cleaned[key]

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self.end_time is not None:
            log.warning("Calling add_event on an ended span.")
            return
        limits = self.lean.limits
        bounded = BoundedAttributes(
            limits.max_event_attributes,
            attributes,
            max_value_len=limits.max_attribute_length,
        )
        self.events.append(Event(name, bounded, time_ns() if timestamp is None else timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_time is None and context.is_valid:
            self.links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.status.status_code is StatusCode.OK:  # OK is final, as the SDK keeps it
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self.status = status
        elif status is not StatusCode.UNSET:
            self.status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        kind = f"{module}.{qualname}" if module and module != "builtins" else qualname
        found: dict[str, Any] = {
            "exception.type": kind,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            found.update(attributes)
        self.add_event("exception", found, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            log.warning("Calling end() on an ended span.")
            return
        self.end_time = time_ns() if end_time is None else end_time
        lean = self.lean
        limits = lean.limits
        self.dropped_attributes = 0
        if (
            limits.max_span_attributes is not None
            and len(self.attributes) > limits.max_span_attributes
        ) or (
            limits.max_attribute_length is not None
        ):  # the SDK's bounds: oldest attributes dropped first, long values cut
            bounded = BoundedAttributes(
                limits.max_span_attributes,
                self.attributes,
                max_value_len=limits.max_attribute_length,
            )
            self.attributes = bounded
            self.dropped_attributes = bounded.dropped
        if limits.max_events is not None and len(self.events) > limits.max_events:
            self.events = self.events[-limits.max_events :]  # the newest, as the SDK keeps them
        self.resource = lean.resource
        self.instrumentation_scope = lean.scope
        for ours in lean.ours:
            ours.add(self)
        if lean.others:
            done = self.readable()
            for processor in lean.others:
                processor.on_end(done)

    def readable(self) -> ReadableSpan:
        """The SDK's `ReadableSpan` of this ended span, as the SDK's span would give it."""
        lean = self.lean
        return ReadableSpan(
            self.name,
            self.context,
            self.parent,
            lean.resource,
            self.attributes,
            tuple(self.events),
            tuple(self.links),
            self.kind,
            None,
            self.status,
            self.start_time,
            self.end_time,
            lean.scope,
        )
