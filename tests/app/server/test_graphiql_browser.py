"""GraphiQL driven by a real headless Chromium against a live bookbridge, with no internet.

tests/browser/ holds the driver (playwright-core from npm, pinned in its package-lock.json) and
uses Debian's `chromium`; `.ci/run` installs both. The screenshot is kept in .artifacts/.
Without Chromium or the driver the test is skipped on a developer machine and fails in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.settings import Settings
from app.runtime.services import Services
from tests import auth_helpers
from tests.factories import catalog
from tests.live import serve

ROOT = Path(__file__).resolve().parents[3]
DRIVER = ROOT / "tests" / "browser" / "drive_graphiql.mjs"
ARTIFACTS = ROOT / ".artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not (DRIVER.parent / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (npm ci --prefix tests/browser)"
    return None


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[str]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    with serve(settings) as url:
        yield url


def drive(url: str, query: str, screenshot: Path, headers: str | None = None) -> dict[str, object]:
    ARTIFACTS.mkdir(exist_ok=True)
    args = ["node", str(DRIVER), f"{url}/graphql", query, str(screenshot)]
    done = subprocess.run(
        [*args, *([headers] if headers else [])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


async def test_graphiql_runs_a_query_offline_in_chromium(live: str, services: Services) -> None:
    await catalog(services, books=4)
    query = "{ books(first: 3) { edges { node { title publisher { name } } } } }"
    shot = ARTIFACTS / "graphiql.png"
    report = drive(live, query, shot)
    assert report["errors"] == [], report["errors"]
    assert report["offsite"] == [], f"the page reached beyond 127.0.0.1: {report['offsite']}"
    requests = report["requests"]
    assert isinstance(requests, list)
    assert any(str(u).endswith("/graphql/static/graphiql.min.js") for u in requests)
    assert report["editor"] == query
    result = json.loads(str(report["result"]))
    titles = [e["node"]["title"] for e in result["data"]["books"]["edges"]]
    assert len(titles) == 3 and all(titles), result
    assert "books" in str(report["explorer"])  # the explorer plugin lists the root fields
    assert shot.stat().st_size > 10_000


async def test_the_headers_tab_sends_a_token(live: str, services: Services) -> None:
    query = "{ studySets(first: 1) { edges { node { id } } } }"
    headers = json.dumps({"Authorization": f"Bearer {auth_helpers.ADMIN}"})
    report = drive(live, query, ARTIFACTS / "graphiql-headers.png", headers)
    assert report["headersTab"] is True and report["offsite"] == []
    assert json.loads(str(report["result"])) == {"data": {"studySets": {"edges": []}}}
