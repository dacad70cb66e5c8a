"""The container files parse and keep their promises (no Docker engine here: static checks)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, flags=re.M)
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in runtime


def test_compose_has_every_part_wired_together() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "otel-collector", "service", "worker", "migrate"} <= set(services)
    service, worker = services["service"], services["worker"]
    for app in (service, worker):
        env = app["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql+asyncpg://")
            and "@postgres:" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["BOOKBRIDGE_ENV"] == "production"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
        assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert app["read_only"] is True
    assert service["command"][0] == "serve" and worker["command"] == ["worker"]
    assert services["migrate"]["command"] == ["migrate"]
    assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/prometheus"
    collector = yaml.safe_load((ROOT / "deploy/otel-collector.yaml").read_text())
    assert collector["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
