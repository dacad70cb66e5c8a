"""Refresh the GraphiQL assets bookbridge serves itself (app/server/static/graphiql/).

    python scripts/build_graphiql.py

Fetches the pinned npm packages below with `npm pack` (needs node/npm and the npm registry),
copies their production browser bundles, stylesheets and licences into the package, and writes
`manifest.json` (versions, file names, SRI hashes: the CDN mode uses the same pinned files).
The output is committed, so installing bookbridge (or building its wheel) needs no network.

graphiql 3.x is the last line that ships a UMD bundle (graphiql.min.js); 3.9.0 pairs with
@graphiql/plugin-explorer 3.2.6 (both on @graphiql/react 0.29) and React 18 (React 19 dropped UMD
builds). All four, and graphiql-explorer bundled inside the plugin, are MIT licensed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "app" / "server" / "static" / "graphiql"

# package -> (version, {file in the tarball: name in OUT})
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "react": (
        "18.3.1",
        {"umd/react.production.min.js": "react.production.min.js", "LICENSE": "LICENSE.react"},
    ),
    "react-dom": (
        "18.3.1",
        {
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "LICENSE.react-dom",
        },
    ),
    "graphiql": (
        "3.9.0",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "LICENSE.graphiql",
        },
    ),
    "@graphiql/plugin-explorer": (
        "3.2.6",
        # the package ships no LICENSE file; it is MIT, from the graphiql monorepo (same licence
        # text as LICENSE.graphiql)
        {"dist/index.umd.js": "plugin-explorer.umd.js", "dist/style.css": "plugin-explorer.css"},
    ),
    # bundled inside the explorer plugin's UMD file: only its licence is copied
    "graphiql-explorer": ("0.9.0", {"LICENSE": "LICENSE.graphiql-explorer"}),
}


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def main() -> int:
    if shutil.which("npm") is None:
        print("build_graphiql: npm is needed (apt-get install npm)", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {"packages": {}, "files": {}}
    with tempfile.TemporaryDirectory(prefix="graphiql-") as tmp:
        for name, (version, files) in PACKAGES.items():
            spec = f"{name}@{version}"
            tgz = subprocess.run(
                ["npm", "pack", "--silent", spec],
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            with tarfile.open(Path(tmp) / tgz) as tar:
                meta = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
                manifest["packages"][name] = {"version": version, "license": meta["license"]}  # type: ignore[index]
                for src, dst in files.items():
                    member = tar.extractfile(f"package/{src}")
                    assert member is not None, f"{spec} has no {src}"
                    data = member.read()
                    (OUT / dst).write_bytes(data)
                    manifest["files"][dst] = {  # type: ignore[index]
                        "package": name,
                        "version": version,
                        "path": src,
                        "integrity": _sri(data),
                    }
            print(f"build_graphiql: {spec} ({meta['license']})", file=sys.stderr)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"build_graphiql: wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
