"""The version has one source, pyproject.toml: the installed distribution reports it, and so do
app.__version__, /healthz and bookbridge_build_info."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import httpx

import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_comes_from_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert app.__version__ == version("bookbridge") == declared
    source = (ROOT / "app" / "__init__.py").read_text()
    assert declared not in source  # read, never written down a second time


async def test_healthz_and_build_info_report_it(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok", "version": app.__version__}
    scraped = (await http.get("/metrics")).text
    assert f'bookbridge_build_info{{version="{app.__version__}"}} 1.0' in scraped
