"""GraphiQL is served by bookbridge itself: every asset it loads is local unless told otherwise."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tomllib
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.settings import Settings
from app.runtime.services import Services
from app.server.factory import create_app
from app.server.graphiql import STATIC_DIR, graphiql_page

SRC = re.compile(r'(?:src|href)="([^"]+)"')


async def client(services: Services, **security: object) -> httpx.AsyncClient:
    settings = services.settings.model_copy(
        update={"security": services.settings.security.model_copy(update=security)}
    )
    app = create_app(settings=settings, services=services)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def bundled(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with await client(services) as http:
        yield http


async def test_page_loads_only_bundled_assets(bundled: httpx.AsyncClient) -> None:
    page = await bundled.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    urls = [u for u in SRC.findall(page.text) if not u.startswith("data:")]
    assert any(u.endswith("graphiql.min.js") for u in urls)
    assert any(u.endswith("plugin-explorer.umd.js") for u in urls)
    for url in urls:
        assert url.startswith("/graphql/static/"), url  # nothing from another host
        asset = await bundled.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert "unpkg" not in page.text and "jsdelivr" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp and "http" not in csp


async def test_bundled_files_match_the_pinned_packages(bundled: httpx.AsyncClient) -> None:
    manifest = json.loads((STATIC_DIR / "manifest.json").read_text())
    assert {"react", "react-dom", "graphiql", "@graphiql/plugin-explorer"} <= set(
        manifest["packages"]
    )
    assert all(p["license"] == "MIT" for p in manifest["packages"].values())
    for name, entry in manifest["files"].items():
        digest = hashlib.sha384((STATIC_DIR / name).read_bytes()).digest()
        assert entry["integrity"] == "sha384-" + base64.b64encode(digest).decode(), name
    missing = await bundled.get("/graphql/static/nope.js")
    assert missing.status_code == 404


async def test_cdn_mode_points_at_the_same_pinned_files(services: Services) -> None:
    async with await client(services, graphiql_assets="cdn") as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
    page = response.text
    assert (
        "script-src 'self' https://cdn.jsdelivr.net/npm/;"
        in (response.headers["content-security-policy"])
    )
    assert "https://cdn.jsdelivr.net/npm/graphiql@3.9.0/graphiql.min.js" in page
    assert page.count('integrity="sha384-') == 6
    assert 'src="/graphql/static/start.js"' in page


async def test_graphiql_off_serves_no_page_and_no_assets(services: Services) -> None:
    async with await client(services, graphiql=False) as http:
        assert (await http.get("/graphql", headers={"accept": "text/html"})).status_code == 404
        assert (await http.get("/graphql/static/graphiql.min.js")).status_code == 404


def test_the_assets_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOKBRIDGE_GRAPHIQL_ASSETS", "cdn")
    assert Settings().security.graphiql_assets == "cdn"


def test_the_wheel_ships_the_assets() -> None:
    pyproject = tomllib.loads((STATIC_DIR.parents[3] / "pyproject.toml").read_text())
    assert "server/static/graphiql/*" in pyproject["tool"]["setuptools"]["package-data"]["app"]
    page = graphiql_page("bundled")
    for name in re.findall(r'/graphql/static/([\w.-]+)"', page):
        assert (STATIC_DIR / name).is_file(), name
