"""The worker serves its own metrics (job durations, build info) when given a port."""

from __future__ import annotations

import socket

import httpx
import pytest

from app import __version__
from app.cli.main import build_parser
from app.runtime.services import Services
from app.worker.jobs import MetricsServer, run_job


async def test_the_worker_metrics_port_serves_job_durations(services: Services) -> None:
    exporter = MetricsServer(0)
    try:
        await run_job(services, "report", 60, full=True)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5)
    finally:
        exporter.stop()
    assert response.status_code == 200
    assert 'bookbridge_worker_job_duration_seconds_count{job="report",status="ok"}' in response.text
    assert f'bookbridge_build_info{{version="{__version__}"}} 1.0' in response.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_worker_once_with_a_metrics_port_releases_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _free_port()
    monkeypatch.setenv("DATABASE_URL", database_url)
    args = build_parser().parse_args(
        ["worker", "--once", "--jobs", "report", "--metrics-port", str(port)]
    )
    assert args.metrics_port == port
    assert args.func(args) == 0
    with socket.socket() as s:  # the exporter stopped with the worker: the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_the_metrics_port_defaults_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.settings import Settings

    assert Settings().observability.worker_metrics_port == 0  # off unless asked
    monkeypatch.setenv("BOOKBRIDGE_WORKER_METRICS_PORT", "9101")
    assert Settings().observability.worker_metrics_port == 9101
    assert build_parser().parse_args(["worker"]).metrics_port is None  # None: the setting
