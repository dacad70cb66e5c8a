"""OpenTelemetry setup from the standard OTEL_* variables; SQL and Redis instrumentation."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from redis.asyncio import Redis
from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability import recording, spans
from app.observability.batch import BatchProcessor


class Traced(Protocol):
    """What tracing instruments (app.runtime.Services has both): the SQL engine and Redis."""

    @property
    def engine(self) -> AsyncEngine: ...

    @property
    def redis(self) -> Redis | None: ...


log = logging.getLogger(__name__)

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporter_name(env: Mapping[str, str]) -> str:
    """OTEL_TRACES_EXPORTER, else 'otlp' when an OTLP endpoint is set, else 'none'."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return "none"
    default = "otlp" if any(env.get(k) for k in _ENDPOINTS) else "none"
    return env.get("OTEL_TRACES_EXPORTER", default).split(",")[0].strip().lower() or "none"


def make_provider(
    env: Mapping[str, str] | None = None, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """A provider exporting as OTEL_* say (sampler, resource and endpoint read by the SDK)."""
    env = os.environ if env is None else env
    name = exporter_name(env)
    if exporter is None:
        if name == "none":
            return None
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            from app.observability.export import OTLPExporter

            exporter = OTLPExporter(env)  # OTLP/HTTP protobuf, our encoder (export.py says why)
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported; tracing off", name)
            return None
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "bookbridge"}
    resource = HashedResource(Resource.create(attributes))
    # RootIds: the SDK's random ids; `spans.span` decides roots without `start_span` with them
    # the SDK's provider that knows its processors: `spans.span` hands them lean spans
    provider = recording.Provider(resource=resource, id_generator=spans.RootIds())
    # the SDK's BatchSpanProcessor's behaviour (OTEL_BSP_* from os.environ, as the SDK reads
    # them), our lean spans queued as they are
    provider.add_span_processor(BatchProcessor(exporter))
    return provider


class HashedResource(Resource):
    """A Resource whose hash is computed once. The OTLP encoder groups every exported span by
    its resource, and `Resource.__hash__` serialises all attributes to JSON on each call: about
    8 us per span, a third of the encoding (docs/performance.md). Resources are immutable."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other)


_instrumented: set[int] = set()
# the SQLAlchemy instrumentor's pool listeners this process removed: (engine, event, listener)
_muted: list[tuple[Engine, str, Callable[..., None]]] = []
_POOL_EVENTS = ("connect", "close", "checkout", "checkin")


def mute_pool_usage(engine: Engine, owner: object) -> None:
    """Remove the pool listeners `owner` (the instrumentor's engine tracer) added to `engine`:
    they keep its OpenTelemetry `db.client.connections.usage` metric, which nothing here reads
    (bookbridge's metrics are Prometheus's, its pool gauges `factory.observe_pool`'s), and run
    about 40 Python calls on every pooled read, traced or sampled out. Its SQL spans stay."""
    for name in _POOL_EVENTS:
        for listener in list(getattr(engine.pool.dispatch, name)):
            if getattr(listener, "__self__", None) is owner:
                event.remove(engine, name, listener)
                _muted.append((engine, name, listener))


def install(provider: TracerProvider, services: Traced, *, make_global: bool = True) -> None:
    """Trace our spans, SQL (all engines of `services`) and Redis with `provider`: as the
    process's global provider, or (`make_global=False`: tests, benchmarks) through
    `spans.use_provider`, as the API sets its global provider only once per process."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    if make_global:
        trace.set_tracer_provider(provider)
    else:
        spans.use_provider(provider)
    # a statement or command under a sampled-out request starts no span of its own (the
    # instrumentors would start one for the sampler to drop: about 12 us each in a request)
    skipping = spans.ChildrenSkipped(provider)
    engine = services.engine.sync_engine
    if id(engine) not in _instrumented:
        _instrumented.add(id(engine))
        owner = SQLAlchemyInstrumentor().instrument(
            engine=engine, tracer_provider=skipping, enable_commenter=False, skip_dep_check=True
        )
        mute_pool_usage(engine, owner)
    redis = RedisInstrumentor()
    if services.redis is not None and not redis.is_instrumented_by_opentelemetry:
        redis.instrument(tracer_provider=skipping)  # command arguments are recorded as '?'


def uninstall() -> None:
    """Undo `install`'s instrumentation and `use_provider` (tests); a global provider stays."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    spans.use_provider(None)
    for engine, name, listener in _muted:  # back, for the instrumentor to remove them itself
        event.listen(engine, name, listener)
    _muted.clear()
    SQLAlchemyInstrumentor().uninstrument()
    _instrumented.clear()
    if RedisInstrumentor().is_instrumented_by_opentelemetry:
        RedisInstrumentor().uninstrument()


def setup(services: Traced) -> TracerProvider | None:
    provider = make_provider()
    if provider is not None:
        install(provider, services)
        log.info("tracing on: exporter %s", exporter_name(os.environ))
    return provider
