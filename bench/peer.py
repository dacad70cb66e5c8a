"""The PostGraphile v4 peer: installed by the bench (npm ci, locked), run over the same database."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import servers

HERE = Path(__file__).resolve().parent / "postgraphile"  # package.json + package-lock.json
CLI = HERE / "node_modules" / "postgraphile" / "cli.js"
VERSION = "4.14.1"

# The same logical pages as bench.scenarios, in PostGraphile's schema (pg-simplify-inflector):
# relations follow the foreign keys (a book's topics are its topic_book_mappings rows), tags is
# the text[] column, and the orders are bookbridge's (id; weight desc then topic / book id).
CATALOG_PAGE = """query CatalogPage($first: Int, $after: Cursor) {
  books(first: $first, after: $after, orderBy: PRIMARY_KEY_ASC) {
    edges { cursor node { id title description tags publisher { id name }
      topicBookMappingsList(orderBy: [WEIGHT_DESC, TOPIC_ID_ASC]) {
        weight topic { id label subject { id name } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

DEEP = """query Deep($topics: Int, $books: Int, $pubBooks: Int, $after: Cursor) {
  topics(first: $topics, after: $after, orderBy: PRIMARY_KEY_ASC) {
    edges { node { id label topicBookMappings(first: $books, orderBy: [WEIGHT_DESC, BOOK_ID_DESC]) {
      edges { node { weight book { id title publisher { id name
        books(first: $pubBooks, orderBy: PRIMARY_KEY_ASC) { edges { node { id title } } } } } } } } } }
  }
}"""

BOOK_BY_ID = """query Book($id: String!) {
  book(id: $id) { id title description tags updatedAt publisher { id name }
    topicBookMappingsList(orderBy: [WEIGHT_DESC, TOPIC_ID_ASC]) { weight topic { id label } } }
}"""


def cursor(after_id: str | None) -> str | None:
    """PostGraphile's cursor for the row after `after_id` in primary-key order."""
    if after_id is None:
        return None
    raw = json.dumps(["primary_key_asc", [after_id]], separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def install() -> str | None:
    """Install the locked packages unless present; why the peer cannot run, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js and npm not found (Debian: apt-get install nodejs npm); peer skipped"
    if installed():
        return None
    cmd = ["npm", "ci", "--prefix", str(HERE), "--no-audit", "--no-fund", "--loglevel=error"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0 or not installed():
        return f"npm ci failed ({done.stderr.strip()[-300:]}); peer skipped"
    return None


def installed() -> bool:
    try:
        found = json.loads((HERE / "node_modules/postgraphile/package.json").read_text())
        plugin = HERE / "node_modules/@graphile-contrib/pg-simplify-inflector/package.json"
    except (OSError, ValueError):
        return False
    return bool(found.get("version") == VERSION and plugin.exists())


def _answers(base: str) -> bool:
    response = httpx.post(base + "/graphql", json={"query": "{ __typename }"}, timeout=2)
    return response.status_code == 200


@contextmanager
def postgraphile(url: str, pool_size: int) -> Iterator[str]:
    """PostGraphile v4 over `url` as one would deploy it: one Node process, no watch, no query log."""
    port = servers.free_port()
    cmd = [
        "node",
        str(CLI),
        *("--connection", url, "--schema", "public"),
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--append-plugins", "@graphile-contrib/pg-simplify-inflector"),
        *("--simple-collections", "both", "--dynamic-json"),
        *("--disable-query-log", "--disable-graphiql", "--max-pool-size", str(pool_size)),
    ]
    env = {"NODE_ENV": "production", "PATH": os.environ.get("PATH", "")}
    with servers.process(cmd, env, f"http://127.0.0.1:{port}", _answers, HERE, quiet=True) as base:
        yield base


def shape(data: Any) -> list[Any]:
    """The ids, titles and weights of a response in document order: what makes two servers'
    answers the same logical page, whatever their field names and nesting."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("id", "title", "label", "name"):
                    found.append(value)
                elif key == "weight":
                    found.append(round(float(value), 6))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def differs(mine: bytes, theirs: bytes) -> str | None:
    """Why PostGraphile's answer is not the page bookbridge returned, or None when it is."""
    a, b = orjson.loads(mine), orjson.loads(theirs)
    if "errors" in b or "data" not in b:
        return f"PostGraphile answered {theirs[:300]!r}"
    if shape(a["data"]) != shape(b["data"]):
        return f"different rows: bookbridge {mine[:200]!r} PostGraphile {theirs[:200]!r}"
    return None
