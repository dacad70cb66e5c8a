"""The batch span processor tracing uses: the SDK's `BatchSpanProcessor`'s behaviour, with our
lean sampled spans (`recording.Recording`) handed to it directly when they end.

The SDK's processor takes a `ReadableSpan` (which `Recording.end` would build for it), and its
`emit` calls `os.getpid()` (a system call), checks its shutdown flag and queue and wakes its
thread for every span: about a third of a sampled request's span work. This one takes the
`Recording` itself (`add`: a length check and a deque append), and its exporter, when it reads
them (`OTLPExporter`: `otlp.encode` reads a `Recording` as it reads a `ReadableSpan`), encodes
them on the export thread without a `ReadableSpan` ever built; any other exporter gets the SDK's
`ReadableSpan` of each, built on the export thread. Spans of the SDK's own (the SQL and Redis
instrumentors') arrive through `on_end` as before. Any other processor on the provider
still receives the SDK's `ReadableSpan` (`Recording.end`).

As the SDK's processor does: OTEL_BSP_MAX_QUEUE_SIZE (default 2048), OTEL_BSP_SCHEDULE_DELAY
(5000 ms), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512) and OTEL_BSP_EXPORT_TIMEOUT (30000 ms) when the
arguments are not given (an unparsable value logged, its default used; the same checks); the
oldest span dropped when the queue is full (counted in `dropped` and
`bookbridge_spans_dropped_total`, logged at most every 10 s); the thread woken to export as soon
as a batch is full, else every schedule delay; `force_flush` exports everything queued (within
its timeout, default the export timeout); `shutdown` exports what is queued, then shuts the
exporter down; spans ended after shutdown are dropped. After a fork (`os.fork`,
multiprocessing, a pre-forking server) the child starts with an empty queue and a thread of its
own, as the SDK's does (registered with `os.register_at_fork`, not checked per span).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from app.observability import metrics

log = logging.getLogger(__name__)

DEFAULTS = {  # as the SDK's BatchSpanProcessor has them
    "OTEL_BSP_MAX_QUEUE_SIZE": 2048,
    "OTEL_BSP_SCHEDULE_DELAY": 5000,
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 512,
    "OTEL_BSP_EXPORT_TIMEOUT": 30000,
}
_WARN_EVERY = 10.0  # seconds between two "queue full" warnings


def setting(env: Mapping[str, str], name: str) -> int:
    """OTEL_BSP_* `name` from `env` as an integer, else its default (logged when unparsable)."""
    default = DEFAULTS[name]
    try:
        return int(env.get(name, default))
    except ValueError:
        log.exception("Unable to parse value for %s as integer. Defaulting to %s.", name, default)
        return default


class BatchProcessor(SpanProcessor):
    """Finished spans queued and exported in batches by a thread of its own (module doc)."""

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int | None = None,
        schedule_delay_millis: float | None = None,
        max_export_batch_size: int | None = None,
        export_timeout_millis: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        if max_queue_size is None:
            max_queue_size = setting(env, "OTEL_BSP_MAX_QUEUE_SIZE")
        if schedule_delay_millis is None:
            schedule_delay_millis = setting(env, "OTEL_BSP_SCHEDULE_DELAY")
        if max_export_batch_size is None:
            max_export_batch_size = setting(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        if export_timeout_millis is None:
            export_timeout_millis = setting(env, "OTEL_BSP_EXPORT_TIMEOUT")
        if max_queue_size <= 0:
            raise ValueError("max_queue_size must be a positive integer.")
        if schedule_delay_millis <= 0:
            raise ValueError("schedule_delay_millis must be positive.")
        if max_export_batch_size <= 0:
            raise ValueError("max_export_batch_size must be a positive integer.")
        if max_export_batch_size > max_queue_size:
            raise ValueError("max_export_batch_size must be less than or equal to max_queue_size.")
        self.exporter = exporter
        # the exporter encodes our `Recording`s itself (else each becomes a ReadableSpan)
        self.reads_recordings = bool(getattr(exporter, "reads_recordings", False))
        self.max_queue_size = max_queue_size
        self.schedule_delay = schedule_delay_millis / 1e3
        self.max_export_batch_size = max_export_batch_size
        self.export_timeout = export_timeout_millis / 1e3
        self.queue: deque[Any] = deque(maxlen=max_queue_size)  # appended right, oldest left
        self.dropped = 0  # spans dropped because the queue was full
        self.warned = 0.0  # when "queue full" was last logged (time.monotonic)
        self.stopped = False
        self.start()
        if hasattr(os, "register_at_fork"):
            again = weakref.WeakMethod(self.start)

            def after_in_child() -> None:
                if (start := again()) is not None:
                    start(forked=True)

            os.register_at_fork(after_in_child=after_in_child)

    def start(self, forked: bool = False) -> None:
        """A lock, wake-up event and export thread of this process (again in a forked child,
        with the parent's queued spans left to the parent)."""
        if forked:
            self.queue.clear()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread = threading.Thread(
            name="BookbridgeBatchSpanProcessor", target=self.work, daemon=True
        )
        if not self.stopped:
            self.thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.add(span)

    def add(self, span: Any) -> None:
        """Queue a sampled finished span: a `ReadableSpan`, or a `Recording` itself."""
        queue = self.queue
        if len(queue) >= self.max_queue_size or self.stopped:
            self.refuse()
            if self.stopped:
                return
        queue.append(span)  # full: the oldest is dropped (the deque's maxlen), as the SDK does
        if len(queue) >= self.max_export_batch_size and not self.wake.is_set():
            self.wake.set()

    def refuse(self) -> None:
        """Count (and now and then log) a span dropped: the queue full, or shut down."""
        reason = "already_shutdown" if self.stopped else "queue_full"
        self.dropped += 1
        metrics.SPANS_DROPPED.labels(reason).inc()
        now = time.monotonic()
        if now - self.warned >= _WARN_EVERY:
            self.warned = now
            if self.stopped:
                log.info("Span processor shut down: dropping spans (%d so far)", self.dropped)
            else:
                log.warning(
                    "Span queue full (%d): dropping the oldest spans (%d so far)",
                    self.max_queue_size,
                    self.dropped,
                )

    def work(self) -> None:
        while not self.stopped:
            woken = self.wake.wait(self.schedule_delay)
            if self.stopped:
                break
            # woken by a full batch: the full batches; the delay over: at least one batch
            self.export("full" if woken else "one")
            self.wake.clear()
        self.export("all")

    def export(self, mode: str, deadline: float | None = None) -> bool:
        """Export queued spans in batches of at most `max_export_batch_size`, as the SDK's
        strategies: "full" while a full batch waits, "one" a batch and then the full ones,
        "all" until the queue is empty. False when `deadline` (time.monotonic) passed first."""
        queue = self.queue
        size = self.max_export_batch_size
        with self.lock:
            done = 0
            while queue and (len(queue) >= size or mode == "all" or (mode == "one" and not done)):
                if deadline is not None and time.monotonic() > deadline:
                    return False
                done += 1
                batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                if not self.reads_recordings:
                    batch = [s if isinstance(s, ReadableSpan) else s.readable() for s in batch]
                try:
                    with suppress_instrumentation():  # the export's own HTTP is not traced
                        self.exporter.export(batch)
                except Exception:
                    log.exception("Exception while exporting Span.")
        return True

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export everything queued now, on the caller's thread; False once shut down or when
        the timeout (default OTEL_BSP_EXPORT_TIMEOUT) ran out first."""
        if self.stopped:
            return False
        seconds = self.export_timeout if timeout_millis is None else timeout_millis / 1e3
        return self.export("all", deadline=time.monotonic() + seconds)

    def shutdown(self, timeout_millis: int = 30000) -> None:
        """Export what is queued (the thread's last turn), then shut the exporter down."""
        if self.stopped:
            return
        self.stopped = True
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout_millis / 1e3)
        self.exporter.shutdown()
