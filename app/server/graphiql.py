"""The GraphiQL page: React, GraphiQL and the explorer plugin served by bookbridge itself.

The browser bundles are pinned npm packages copied into `static/graphiql/` by
`scripts/build_graphiql.py` and shipped in the wheel, so the page works offline and behind a
firewall. `BOOKBRIDGE_GRAPHIQL_ASSETS=cdn` loads the same pinned files from a public CDN instead
(checked by their SRI hashes); the page's own start script is always served from here.
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from typing import Literal

STATIC_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
STATIC_PATH = "/graphql/static"  # where the factory mounts STATIC_DIR
CDN = "https://cdn.jsdelivr.net/npm"

SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
)
STYLES = ("graphiql.min.css", "plugin-explorer.css")

PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>bookbridge GraphiQL</title>
    <link rel="icon" href="data:," />
{styles}
    <style>
      body {{ height: 100%; margin: 0; width: 100%; overflow: hidden; }}
      #graphiql {{ height: 100vh; display: flex; }}
    </style>
  </head>
  <body>
    <div id="graphiql" class="graphiql-container">Loading GraphiQL...</div>
{scripts}
    <script src="{static}/start.js"></script>
  </body>
</html>
"""


@cache
def _manifest() -> dict[str, dict[str, str]]:
    files: dict[str, dict[str, str]] = json.loads(
        (STATIC_DIR / "manifest.json").read_text(encoding="utf-8")
    )["files"]
    return files


def asset_url(name: str, assets: Literal["bundled", "cdn"]) -> tuple[str, str | None]:
    """The URL of a bundled file, and its SRI hash when it comes from the CDN."""
    if assets == "bundled":
        return f"{STATIC_PATH}/{name}", None
    entry = _manifest()[name]
    return f"{CDN}/{entry['package']}@{entry['version']}/{entry['path']}", entry["integrity"]


def _attrs(url: str, integrity: str | None) -> str:
    extra = f' integrity="{integrity}" crossorigin="anonymous"' if integrity else ""
    return f'"{html.escape(url)}"{extra}'


def content_security_policy(assets: Literal["bundled", "cdn"] = "bundled") -> str:
    """What the page may load: this origin only (plus the CDN in `cdn` mode). The browser test
    checks that GraphiQL runs under it without a violation."""
    cdn = f" {CDN}/" if assets == "cdn" else ""
    return (
        f"default-src 'self'; script-src 'self'{cdn}; style-src 'self' 'unsafe-inline'{cdn}; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


@cache
def graphiql_page(assets: Literal["bundled", "cdn"] = "bundled") -> str:
    styles = "\n".join(
        f'    <link rel="stylesheet" href={_attrs(*asset_url(name, assets))} />' for name in STYLES
    )
    scripts = "\n".join(
        f"    <script src={_attrs(*asset_url(name, assets))}></script>" for name in SCRIPTS
    )
    return PAGE.format(styles=styles, scripts=scripts, static=STATIC_PATH)
