"""Spans for the scoring resolver, its cache lookup and its SQL (none per GraphQL field)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bookbridge.app.reco import service
from bookbridge.app.reco.cache import RecoCache
from bookbridge.app.services import Services
from tests.test_reco_topic import refresh, setup


def exporter() -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


async def test_resolver_cache_and_sql_spans(services: Services) -> None:
    await setup(services)
    await refresh(services)
    memory = exporter()
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
        "reco.sql.study_set_contexts",
        "reco.sql.own_books",
        "reco.sql.topic_candidates",
        "reco.sql.neighbours",
        "reco.sql.trending",
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
    hit = next(sp for sp in again if sp.name == "reco.cache.lookup")
    assert hit.attributes is not None and hit.attributes["reco.cache.source"] == "local"
    memory.shutdown()
