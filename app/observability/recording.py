"""A lean recording span for our own sampled spans, handed to the provider's processors as the
SDK's `ReadableSpan` when it ends.

The SDK's recording span (`Tracer.start_span` with its sampler, `Span` with its locked
`BoundedAttributes`, the `ReadableSpan` copy at `end`) runs about 110 Python calls a span; this
one, for a provider `tracing.make_provider` built (a `Provider`: its processors known), keeps
attributes in a plain dict and runs about 15. What processors and exporters receive is the SDK's
own `ReadableSpan` with what the SDK's span would carry: name, ids, parent, kind, attributes
cleaned and bounded by the SDK's `BoundedAttributes` under the provider's `SpanLimits` when they
are not plain values or exceed the limit, events, status (OK is final), start and end.
`spans.span` starts it only where the sampler's decision is known without asking (a root the
ratio samples in, a child of a sampled local parent under `parentbased_*`); anything else is the
SDK's span.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
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

log = logging.getLogger(__name__)

_PLAIN = frozenset({str, bool, int, float})
_UNSET = Status(StatusCode.UNSET)


class Provider(TracerProvider):
    """The SDK's TracerProvider that also keeps the processors added to it, in order, so our
    lean spans can be handed to them (the SDK keeps its own list private)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.processors: list[SpanProcessor] = []
        self.limits = SpanLimits()

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.processors.append(span_processor)


class Lean:
    """What a lean span of one tracer needs: its provider's resource, processors and limits, and
    the tracer's instrumentation scope (as the SDK's tracer of that name has it)."""

    __slots__ = ("limits", "processors", "resource", "scope")

    def __init__(self, provider: Provider, scope: str) -> None:
        self.resource: Resource = provider.resource
        self.processors = provider.processors
        self.limits = provider.limits
        self.scope = InstrumentationScope(scope, "", None, None)  # as get_tracer(scope) has it


class Recording(trace.Span):
    """A sampled span: `end` gives the processors a `ReadableSpan` of it."""

    __slots__ = (
        "attributes",
        "context",
        "end_time",
        "events",
        "kind",
        "lean",
        "links",
        "name",
        "parent",
        "start_time",
        "status",
    )

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
        self.attributes: dict[str, Any] = {}
        self.events: list[Event] = []
        self.links: list[Link] = []
        self.status = _UNSET
        self.end_time: int | None = None
        if attributes:
            self.set_attributes(attributes)
        self.start_time = time_ns()
        for processor in lean.processors:
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
        self.end_time = ended = time_ns() if end_time is None else end_time
        lean = self.lean
        limits = lean.limits
        attributes: Mapping[str, Any] = self.attributes
        if (
            limits.max_span_attributes is not None and len(attributes) > limits.max_span_attributes
        ) or (
            limits.max_attribute_length is not None
        ):  # the SDK's bounds: oldest attributes dropped first, long values cut
            attributes = BoundedAttributes(
                limits.max_span_attributes,
                attributes,
                max_value_len=limits.max_attribute_length,
            )
        events: Sequence[Event] = self.events
        if limits.max_events is not None and len(events) > limits.max_events:
            events = events[-limits.max_events :]  # as the SDK's BoundedList keeps the newest
        done = ReadableSpan(
            self.name,
            self.context,
            self.parent,
            lean.resource,
            attributes,
            tuple(events),
            tuple(self.links),
            self.kind,
            None,
            self.status,
            self.start_time,
            ended,
            lean.scope,
        )
        for processor in lean.processors:
            processor.on_end(done)
