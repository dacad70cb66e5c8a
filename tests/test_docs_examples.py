"""Every GraphQL example in README.md and docs/*.md runs against the demo data and returns data.

The demo is loaded once for this module the way a newcomer loads it (`bookbridge demo`, in a
subprocess) into the test database, and removed again at the end of the module. An example
returns data when it has no errors, no null root field and no empty list anywhere in it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.core.settings import Settings
from app.db.models import Base
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
CLEANUP = [f"DELETE FROM {t.name}" for t in reversed(Base.metadata.sorted_tables)]


def examples() -> Iterator[tuple[str, str, str]]:
    """(language, block, 'file:line') for every fenced block of the docs."""
    for path in DOCS:
        body = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(body):
            line = body.count("\n", 0, match.start()) + 1
            yield match.group(1), match.group(2), f"{path.relative_to(ROOT)}:{line}"


GRAPHQL = [pytest.param(block, id=where) for lang, block, where in examples() if lang == "graphql"]


def test_the_docs_have_examples_and_label_them() -> None:
    assert len(GRAPHQL) >= 2
    for lang, block, where in examples():
        first = block.lstrip().split("\n", 1)[0]
        looks_like_graphql = first == "{" or re.match(r"(query|mutation)\b", first)
        assert lang == "graphql" or not looks_like_graphql, f"{where}: label it ```graphql"


def empty_parts(value: Any, path: str = "data") -> list[str]:
    if value is None:
        return [f"{path} is null"]
    if isinstance(value, list):
        if not value:
            return [f"{path} is an empty list"]
        return [p for i, v in enumerate(value) for p in empty_parts(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_parts(v, f"{path}.{k}")]
    return []


@pytest.fixture(scope="module")
async def demo(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    assert settings.database_url
    env = {**os.environ, "DATABASE_URL": settings.database_url, "BOOKBRIDGE_ENV": "test"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli.main", "demo"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    services = Services.create(settings)
    try:
        app = create_app(services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        async with services.engine.begin() as conn:
            for statement in CLEANUP:
                await conn.execute(text(statement))
        await services.close()


@pytest.mark.parametrize("query", GRAPHQL)
async def test_example_returns_data(demo: httpx.AsyncClient, query: str) -> None:
    # as the README says: GraphiQL with an admin key in the Headers tab
    response = await demo.post(
        "/graphql", json={"query": query}, headers=auth_helpers.bearer(auth_helpers.ADMIN)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    assert empty_parts(body["data"]) == [], body["data"]
