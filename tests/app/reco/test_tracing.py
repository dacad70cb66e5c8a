"""Spans for the scoring resolver, its cache lookup and its SQL (none per GraphQL field)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.reco import service, tracing
from app.reco.cache import RecoCache
from app.runtime.services import Services
from tests import reco_factories as f
from tests.app.reco.test_topic import refresh, setup


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    """A provider of our own (the global one is left alone: other code reads it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)
    provider.shutdown()


async def with_fresh_cache(services: Services) -> Services:
    """The world set up and its lists computed; the services with a cache of their own."""
    await setup(services)
    await refresh(services)
    return Services(
        settings=services.settings,
        engine=services.engine,
        read_engine=services.read_engine,
        reco_cache=RecoCache(services.settings.reco),
    )


async def test_resolver_cache_and_sql_spans(
    services: Services, memory: InMemorySpanExporter
) -> None:
    s = await with_fresh_cache(services)
    await service.recommendations(s, "ss1", 5, "HYBRID")
    spans = memory.get_finished_spans()
    names = {span.name for span in spans}
    assert {
        "reco.recommendations",
        "reco.cache.lookup",
        "reco.sql.hybrid_inputs",  # HYBRID's inputs in one batch of statements
    } <= names
    root = next(sp for sp in spans if sp.name == "reco.recommendations")
    assert root.attributes is not None and root.attributes["reco.cache.source"] == "miss"
    assert root.attributes["reco.strategy"] == "HYBRID"
    lookup = next(sp for sp in spans if sp.name == "reco.cache.lookup")
    assert lookup.parent is not None and lookup.parent.span_id == root.context.span_id
    assert lookup.attributes == {"reco.cache.keys": 1, "reco.cache.source": "miss"}
    sql = [sp for sp in spans if sp.name.startswith("reco.sql.")]
    assert all(sp.context.trace_id == root.context.trace_id for sp in sql)
    memory.clear()
    await service.recommendations(s, "ss1", 5, "HYBRID")
    again = memory.get_finished_spans()
    assert not [sp for sp in again if sp.name.startswith("reco.sql.")]  # served from the cache
    memory.clear()
    await service.recommendations(s, "ss1", 5, "COLLABORATIVE")  # another strategy: its reads
    names = {span.name for span in memory.get_finished_spans()}
    assert {"reco.sql.study_set_inputs", "reco.sql.neighbour_scores"} <= names
    # a list served from this process's cache: the resolver's span says so, and there is no
    # cache span under it (nothing left the process: most requests of a busy replica)
    assert [sp.name for sp in again] == ["reco.recommendations"]
    hit = again[0].attributes
    assert hit is not None and hit["reco.cache.source"] == "local"
    assert hit["reco.strategy"] == "HYBRID" and hit["reco.first"] == 5


async def test_a_batch_of_lists_says_where_its_lists_came_from(
    services: Services, memory: InMemorySpanExporter
) -> None:
    s = await with_fresh_cache(services)
    await f.study_set(services, "ss2", "u2", ["t1", "t2"])
    keys = [service.ListKey("ss1", 5), service.ListKey("ss2", 5)]
    await service.recommendations(s, "ss1", 5, None)  # ss1's list cached in process
    memory.clear()
    await service.recommendations_many(s, keys)
    spans = memory.get_finished_spans()
    batch = next(sp for sp in spans if sp.name == "reco.recommendations_many")
    assert batch.attributes == {"reco.keys": 2, "reco.cache.source": "local,miss"}
    lookup = next(sp for sp in spans if sp.name == "reco.cache.lookup")
    # only ss2's lookup left the process
    assert lookup.attributes == {"reco.cache.keys": 1, "reco.cache.source": "miss"}
    memory.clear()
    await service.recommendations_many(s, keys)
    spans = memory.get_finished_spans()
    assert [sp.name for sp in spans] == ["reco.recommendations_many"]
    assert spans[0].attributes == {"reco.keys": 2, "reco.cache.source": "local"}


async def test_a_sampled_out_request_records_no_reco_span(services: Services) -> None:
    """Under a parent-based ratio sampler (the deployment's), a list computed for a request
    that was sampled out leaves no span at all: not its resolver's, lookup's or queries'."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    s = await with_fresh_cache(services)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        found = await service.recommendations(s, "ss1", 5, "HYBRID")  # a miss: SQL ran
        assert found.items
        assert s.reco_cache.stats["local_hits"] == 0
    finally:
        tracing.use_provider(None)
        provider.shutdown()
    assert exporter.get_finished_spans() == ()
