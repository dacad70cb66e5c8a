"""bench.tracing_simul: what environment each compared server gets."""

from __future__ import annotations

from bench import tracing_simul
from bench.__main__ import tracing_env

BASE = {"DATABASE_URL": "postgresql+asyncpg://x/y", "OTEL_TRACES_EXPORTER": "none"}


def test_an_untraced_variant_runs_the_bench_server_as_it_is() -> None:
    assert tracing_simul.variant("untraced", BASE, "http://sink") == ("untraced", BASE)


def test_a_traced_variant_exports_to_the_sink_at_the_bench_ratio() -> None:
    name, env = tracing_simul.variant("traced", BASE, "http://sink")
    assert name == "traced"
    assert env == BASE | tracing_env("http://sink")
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.1"


def test_a_variants_settings_override_the_tracing_ones() -> None:
    name, env = tracing_simul.variant(
        "traced_ratio0:OTEL_TRACES_SAMPLER_ARG=0,OTEL_BSP_SCHEDULE_DELAY=200", BASE, "http://sink"
    )
    assert name == "traced_ratio0"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0"
    assert env["OTEL_BSP_SCHEDULE_DELAY"] == "200"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://sink"
    assert BASE["OTEL_TRACES_EXPORTER"] == "none"  # the base is not changed
