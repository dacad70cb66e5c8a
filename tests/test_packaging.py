"""The wheel built from the repository is the service: installed elsewhere, it loads the demo and serves."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "graphql_schema", "resolvers", "loaders", "migrations")
IGNORED = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    ".bookbridge",
    "node_modules",
    "__pycache__",
    ".*_cache",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .` installed (without its dependencies, which this venv has) into a folder."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a clean copy: setuptools builds in the tree (build/, egg-info)
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(out / "dist"), str(source)], check=True)
    (wheel,) = (out / "dist").glob("bookbridge-*.whl")
    target = out / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


@pytest.fixture(scope="module")
def scratch_database(database_url: str) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    plain = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    base, _, _ = plain.rpartition("/")
    name = "bookbridge_wheel_test"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(plain)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(run(f"CREATE DATABASE {name}"))
    yield f"{base}/{name}"
    asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def environment(site: Path, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOOKBRIDGE_", "PYTHON"))}
    env |= {"PYTHONPATH": str(site), "DATABASE_URL": database, "BOOKBRIDGE_ENV": "production"}
    env.pop("REDIS_URL", None)
    return env


def test_the_wheel_ships_every_package_and_its_data(installed: Path, tmp_path: Path) -> None:
    env = environment(installed, "postgresql://unused")
    code = "import app, graphql_schema, resolvers, loaders, migrations, sys; print(app.__file__)"
    where = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed)  # not the checkout
    for package in PACKAGES:
        assert (installed / package / "__init__.py").is_file()
    assert list((installed / "app" / "demo" / "data").glob("*.jsonl.gz"))
    assert (installed / "migrations" / "alembic.ini").is_file()
    assert list((installed / "migrations" / "versions").glob("0001_*.py"))


def test_the_installed_wheel_loads_the_demo_and_serves_it(
    installed: Path, scratch_database: str, tmp_path: Path
) -> None:
    env = environment(installed, scratch_database)
    command = [str(installed / "bin" / "bookbridge")]  # the console script of the wheel
    demo = subprocess.run(
        [*command, "demo"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    port = free_port()
    server = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "bookbridge serve did not come up in 60 s"
            time.sleep(0.2)
        query = "{ books(first: 3) { edges { node { id title publisher { name } } } } }"
        answer = httpx.post(url + "/graphql", json={"query": query}, timeout=30).json()
        assert "errors" not in answer, answer
        edges = answer["data"]["books"]["edges"]
        assert len(edges) == 3 and all(e["node"]["title"] for e in edges)
    finally:
        server.terminate()
        server.wait(timeout=30)
