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


async def test_resolver_cache_and_sql_spans(
    services: Services, memory: InMemorySpanExporter
) -> None:
    await setup(services)
    await refresh(services)
    s = Services(
        settings=services.settings,
        engine=services.engine,
        read_engine=services.read_engine,
        reco_cache=RecoCache(services.settings.reco),
    )
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
    hit = next(sp for sp in again if sp.name == "reco.cache.lookup")
    assert hit.attributes is not None and hit.attributes["reco.cache.source"] == "local"
