"""Trusted documents: hashes instead of text, enforcing mode, and the CLI that registers them."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.db import trusted_documents
from app.runtime.services import Services
from app.server.factory import create_app

DOC = "query Subjects { subjects { id name } }"
DIGEST = hashlib.sha256(DOC.encode()).hexdigest()


def apq(digest: str) -> dict[str, object]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}


async def register(services: Services, body: str = DOC) -> str:
    async with services.engine.begin() as conn:
        return await trusted_documents.register(conn, body, "subjects")


async def test_a_registered_hash_runs_in_place_of_the_text(
    services: Services, http: httpx.AsyncClient
) -> None:
    missing = await http.post("/graphql", json=apq(DIGEST))
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    await register(services)
    by_apq = await http.post("/graphql", json=apq(DIGEST))
    assert by_apq.status_code == 200 and by_apq.json() == {"data": {"subjects": []}}
    by_id = await http.post("/graphql", json={"documentId": f"sha256:{DIGEST}"})
    assert by_id.json() == {"data": {"subjects": []}}
    by_get = await http.get(
        "/graphql",
        params={"documentId": f"sha256:{DIGEST}"},
        headers={"accept": "application/json"},
    )
    assert by_get.json() == {"data": {"subjects": []}}
    text = await http.post("/graphql", json={"query": "{ grades { id } }"})
    assert text.json() == {"data": {"grades": []}}  # allow mode: any text too


@pytest.mark.parametrize(
    "body",
    [
        apq("0" * 63),
        apq("Z" * 64),
        {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": DIGEST}}},
        {"extensions": {"persistedQuery": "yes"}},
        {"documentId": DIGEST},
        {"documentId": 12},
        {"query": DOC, **apq("a" * 64)},
    ],
)
async def test_malformed_hashes_are_400(http: httpx.AsyncClient, body: dict[str, object]) -> None:
    response = await http.post("/graphql", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.fixture
async def enforcing(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    security = services.settings.security.model_copy(update={"trusted_documents": "enforce"})
    settings = services.settings.model_copy(update={"security": security})
    scoped = dataclasses.replace(services, settings=settings)
    transport = httpx.ASGITransport(app=create_app(services=scoped))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_enforcing_mode_runs_only_registered_documents(
    services: Services, enforcing: httpx.AsyncClient
) -> None:
    await register(services)
    assert (await enforcing.post("/graphql", json={"query": DOC})).status_code == 200
    assert (await enforcing.post("/graphql", json=apq(DIGEST))).status_code == 200
    other = await enforcing.post("/graphql", json={"query": "{ grades { id } }"})
    assert other.status_code == 400
    assert other.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_TRUSTED"
    spaced = await enforcing.post("/graphql", json={"query": DOC + " "})
    assert spaced.status_code == 400  # the exact registered text, byte for byte


def test_cli_registers_graphql_files(tmp_path: Path, database_url: str) -> None:
    good = tmp_path / "subjects.graphql"
    good.write_text(DOC)
    bad = tmp_path / "typo.graphql"
    bad.write_text("{ subjectz { id } }")
    env = {"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    cli = [sys.executable, "-m", "app.cli.main", "documents"]
    done = subprocess.run(
        [*cli, "register", str(good)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == f"sha256:{DIGEST}"
    refused = subprocess.run(
        [*cli, "register", str(bad)], env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2 and "subjectz" in refused.stderr
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, check=False)
    assert DIGEST in listed.stdout
